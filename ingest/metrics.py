"""Prometheus metrics of one ingest service, in a registry of its own (so several services
in one process, as in tests, do not share counters), served over HTTP beside the health
checks: /metrics, /healthz (the process is alive) and /readyz (it is consuming)."""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

# (ready, reason): the reason says what is wrong, or what is fine
Readiness = Callable[[], tuple[bool, str]]

_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "coffeetrace_ingest_messages_received",
            "MQTT messages handed to ingest by the broker.",
            registry=r,
        )
        self.stored = Counter(
            "coffeetrace_ingest_sets_stored",
            "Reading sets and harvest events newly stored.",
            ["kind"],
            registry=r,
        )
        self.readings = Counter(
            "coffeetrace_ingest_readings_stored",
            "Rows written to sensor_readings and harvest_events.",
            registry=r,
        )
        self.duplicates = Counter(
            "coffeetrace_ingest_duplicates",
            "Reading sets whose (device, msg id) was already stored.",
            registry=r,
        )
        self.dead_letters = Counter(
            "coffeetrace_ingest_dead_letters",
            "Messages or reading sets rejected to dead_letters.",
            ["reason"],
            registry=r,
        )
        self.dead_letters_dropped = Counter(
            "coffeetrace_ingest_dead_letters_dropped",
            "Dead letters beyond a device's hourly cap: counted here and in "
            "dead_letter_hours, without a row of their own.",
            ["reason"],
            registry=r,
        )
        self.db_errors = Counter(
            "coffeetrace_ingest_db_errors",
            "Failed batch transactions (retried; nothing acknowledged).",
            registry=r,
        )
        self.batch_size = Histogram(
            "coffeetrace_ingest_batch_messages",
            "Messages per database transaction.",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "coffeetrace_ingest_commit_seconds",
            "Duration of a batch's database transaction.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.lag_seconds = Histogram(
            "coffeetrace_ingest_publish_to_commit_seconds",
            "Commit time minus the newest device timestamp of a message "
            "(large for replayed offline buffers).",
            buckets=_LAG_BUCKETS,
            registry=r,
        )

    def serve(
        self, port: int, readiness: Readiness, alive: Callable[[], bool], addr: str = "127.0.0.1"
    ) -> ThreadingHTTPServer | None:
        """Serve /metrics, /healthz and /readyz on `port` (0: off); returns the server."""
        if port <= 0:
            return None
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # seconds a client may take to send its request: no slow-loris

            def do_GET(self) -> None:  # noqa: N802  # http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = alive()
                    self._json(200 if ok else 503, {"status": "ok" if ok else "failed"})
                elif path == "/readyz":
                    ready, reason = readiness()
                    self._json(
                        200 if ready else 503,
                        {"status": "ready" if ready else "not ready", "reason": reason},
                    )
                else:
                    self._json(
                        404, {"error": "not_found", "message": "try /metrics, /healthz or /readyz"}
                    )

            def _json(self, status: int, body: dict[str, str]) -> None:
                self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # probes every few seconds: not worth a log line each

        server = ThreadingHTTPServer((addr, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="ingest-http", daemon=True).start()
        return server


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(v)` for each of `values`, with one update per bucket.

    Lags come one per message; observing them one by one cost the paho process about 2 us
    a message. This uses the histogram's bucket list (prometheus_client internals, stable
    since 0.4) when it has one, and observe() otherwise."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values:
            histogram.observe(v)
        return
    counts = [0] * len(bounds)
    for v in values:
        counts[bisect_left(bounds, v)] += 1  # observe(): the first bucket with v <= bound
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    total.inc(sum(values))
