"""The benchmarks' own HTTP load generator: keep-alive connections on asyncio, responses
parsed with httptools (uvicorn's parser, a dependency of the product), for machines
without wrk.

Each connection sends one GET at a time and waits for the whole answer; a request that
takes longer than `timeout_s` is counted as a timeout and its connection replaced, a
refused or dropped connection as a socket error, an answer of 400 or more as bad. None of
them ends the run: the figures of a slow or failing server are reported, not raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httptools

RETRY_PAUSE_S = 0.01  # after a refused connection, so a closed port is not spun on
READ_CHUNK = 65536


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    bad: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    body_bytes: int = 0


class _Answer:
    """httptools callbacks for one response at a time."""

    def __init__(self) -> None:
        self.done = False
        self.body = 0
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_body(self, body: bytes) -> None:
        self.body += len(body)

    def on_message_complete(self) -> None:
        self.done = True
        # asked here: once the message is over, the parser no longer knows
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()


def request_bytes(host: str, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, int, bool]:
    """Send one request, read its whole answer: (status, body bytes, keep-alive)."""
    answer = _Answer()
    parser = answer.parser = httptools.HttpResponseParser(answer)
    writer.write(request)
    while not answer.done:
        data = await reader.read(READ_CHUNK)
        if not data:
            raise ConnectionResetError("the server closed the connection mid-answer")
        parser.feed_data(data)
    return parser.get_status_code(), answer.body, answer.keep_alive


async def _connection(
    host: str,
    port: int,
    requests: Sequence[bytes],
    start: int,
    stop_at: float,
    timeout_s: float,
    tally: Tally,
) -> None:
    i = start
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while time.perf_counter() < stop_at:
            if writer is None:
                try:
                    async with asyncio.timeout(timeout_s):
                        reader, writer = await asyncio.open_connection(host, port)
                except (OSError, TimeoutError):
                    tally.socket_errors += 1
                    await asyncio.sleep(RETRY_PAUSE_S)
                    continue
            assert reader is not None
            request = requests[i % len(requests)]
            i += 1
            t = time.perf_counter()
            try:
                async with asyncio.timeout(timeout_s):
                    status, body, keep = await _one(reader, writer, request)
            except TimeoutError:
                tally.timeouts += 1
                keep = False
            except (OSError, httptools.HttpParserError):
                tally.socket_errors += 1
                keep = False
            else:
                tally.latencies.append(time.perf_counter() - t)
                tally.body_bytes += body
                tally.bad += status >= 400
            if not keep:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def summary(tally: Tally, elapsed_s: float) -> dict[str, float]:
    """requests/s of complete answers, p50 and p99 in ms, and the failures counted."""
    lat = sorted(tally.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else 0.0

    return {
        "rps": len(lat) / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "bad": float(tally.bad),
        "socket_errors": float(tally.socket_errors),
        "timeouts": float(tally.timeouts),
    }


def run(
    host: str,
    port: int,
    paths: Sequence[str],
    *,
    connections: int,
    duration_s: float,
    headers: Mapping[str, str],
    timeout_s: float = 10.0,
) -> dict[str, float]:
    """GET `paths` (in turn, each connection from its own place in them) over
    `connections` keep-alive connections for `duration_s`."""
    if not paths:
        raise ValueError("the load generator needs at least one path")
    requests = [request_bytes(f"{host}:{port}", p, headers) for p in paths]

    async def main() -> dict[str, float]:
        tally = Tally()
        started = time.perf_counter()
        stop_at = started + duration_s
        step = max(1, len(requests) // max(1, connections))
        await asyncio.gather(
            *(
                _connection(host, port, requests, n * step, stop_at, timeout_s, tally)
                for n in range(connections)
            )
        )
        return summary(tally, time.perf_counter() - started)

    return asyncio.run(main())
