"""Prometheus metrics of one ingest service, in a registry of its own (so several services
in one process, as in tests, do not share counters)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("coffeetrace_ingest_messages_received",
                                "MQTT messages handed to ingest by the broker.", registry=r)
        self.stored = Counter("coffeetrace_ingest_sets_stored",
                              "Reading sets and harvest events newly stored.", ["kind"], registry=r)
        self.readings = Counter("coffeetrace_ingest_readings_stored",
                                "Rows written to sensor_readings and harvest_events.", registry=r)
        self.duplicates = Counter("coffeetrace_ingest_duplicates",
                                  "Reading sets whose (device, msg id) was already stored.",
                                  registry=r)
        self.dead_letters = Counter("coffeetrace_ingest_dead_letters",
                                    "Messages or reading sets rejected to dead_letters.",
                                    ["reason"], registry=r)
        self.db_errors = Counter("coffeetrace_ingest_db_errors",
                                 "Failed batch transactions (retried; nothing acknowledged).",
                                 registry=r)
        self.batch_size = Histogram("coffeetrace_ingest_batch_messages",
                                    "Messages per database transaction.",
                                    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                                    registry=r)
        self.commit_seconds = Histogram("coffeetrace_ingest_commit_seconds",
                                        "Duration of a batch's database transaction.",
                                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25, 0.5, 1, 2.5, 5), registry=r)
        self.lag_seconds = Histogram("coffeetrace_ingest_publish_to_commit_seconds",
                                     "Commit time minus the newest device timestamp of a message "
                                     "(large for replayed offline buffers).",
                                     buckets=_LAG_BUCKETS, registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> object | None:
        """Serve /metrics on `port` (0: off); returns the server to shut down."""
        if port <= 0:
            return None
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
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
