"""`coffeetrace api` serves the app alone, as in production."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.api.server import api_command, fetch


def test_coffeetrace_api_serves(db_url: str) -> None:
    with api_command(db_url) as base:
        assert json.loads(fetch(f"{base}/healthz")) == {"status": "ok"}
        spec = json.loads(fetch(f"{base}/openapi.json"))
        assert "/01/{gtin}/10/{lot}" in spec["paths"] and "/v1/lots" in spec["paths"]
        assert b"swagger" in fetch(f"{base}/docs").lower()


def _answer(sock: socket.socket, wait_s: float = 15) -> bytes:
    """What the server sends until it closes the connection (or `wait_s` pass)."""
    sock.settimeout(wait_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data + b"<still open>"
    return data


def _response(sock: socket.socket) -> bytes:
    """One whole response (head, then as many body bytes as its Content-Length says)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_request_heads_are_timed_and_bounded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # slowloris: half a request head, or none, must not hold a connection for ever
    monkeypatch.setenv("COFFEETRACE_API_HEADER_TIMEOUT_S", "2")
    monkeypatch.setenv("COFFEETRACE_API_KEEP_ALIVE_S", "30")
    with api_command(db_url) as base:
        url = urlsplit(base)
        addr = (url.hostname, url.port)
        with socket.create_connection(addr) as half, socket.create_connection(addr) as mute:
            half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            assert _answer(half).startswith(b"HTTP/1.1 408")
            assert _answer(mute).startswith(b"HTTP/1.1 408")
        with socket.create_connection(addr) as big:  # the httptools parser has no limit
            big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
            assert _answer(big).startswith(b"HTTP/1.1 431")
        # a whole request is answered, and a kept-alive connection's next one too
        with socket.create_connection(addr) as ok:
            for _ in range(2):
                ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _response(ok).startswith(b"HTTP/1.1 200")
            # idle after its response: the keep-alive timeout (30 s) applies, not the
            # head's; once the next head starts, its own clock runs
            ok.sendall(b"GET /healthz HTTP/1.1\r\n")
            assert _answer(ok).startswith(b"HTTP/1.1 408")
        assert json.loads(fetch(f"{base}/healthz")) == {"status": "ok"}
