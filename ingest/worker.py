"""The ingest worker process: parse, validate and commit whole batches for the paho process.

Why a process of its own: paho's per-message Python work (packet parsing, PUBACK) and ours
(JSON, pydantic, registry checks, ledger and COPY rows) used to share one interpreter lock,
so their costs added up on one core. Here the paho process only receives, batches and
acknowledges; this process does the rest on the other core. It never talks to the broker:
it answers each batch with "committed" (the paho process then acknowledges it on the
connection that delivered it) or with nothing (the broker redelivers it later).

Protocol on one duplex pipe (each item one pickle):
  parent -> worker: ("batch", id, [(topic, payload, mid, qos, generation, received_at), ...])
                    ("stop", seconds)  commit what was received, give up after `seconds`
  worker -> parent: ("ready",) | ("error", text)                      once, after start
                    ("done", id, Written, rejects, lags, commit_s, committed_at)
                    ("abandoned", id)  stopping with the database still down
                    ("db_error",)      one failed attempt (for the metric)
                    ("stopped",)
EOF on the pipe (the parent was killed) counts as a stop with no time left.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import signal
import threading
import time
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import psycopg
from coffeetrace.ingest.devices import DeviceCache
from coffeetrace.ingest.store import Written, write_batch
from coffeetrace.ingest.topics import Incoming
from coffeetrace.ingest.validate import Prepared, Preparer, Reject

from coffeetrace import db
from coffeetrace.settings import Settings

log = logging.getLogger("coffeetrace.ingest.worker")

# Errors that mean "the database is unreachable": retry the same batch, acknowledge nothing.
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)


class Worker:
    def __init__(self, pipe: Connection, settings: Settings) -> None:
        self.pipe = pipe
        self.settings = settings
        self.preparer = Preparer(settings.topic_prefix,
                                 DeviceCache(ttl_s=settings.ingest_device_cache_ttl_s),
                                 max_payload_bytes=settings.ingest_max_payload_bytes,
                                 clock_skew_s=settings.ingest_clock_skew_s,
                                 payload_chars=settings.ingest_dead_letter_payload_chars)
        self.pool: Any = None
        self._send_lock = threading.Lock()  # the writer and the retry loops both send
        self._inbox: queue.SimpleQueue[tuple[int, list[Incoming]] | None] = queue.SimpleQueue()
        # stage 1 -> stage 2; None = no more batches
        self._handoff: queue.Queue[tuple[int, list[Incoming], Prepared] | None] = queue.Queue(1)
        self._give_up_at = float("inf")
        self._abandon = threading.Event()
        self._expect_duplicates = False  # the last batch had keys the ledger knew

    def send(self, item: tuple[Any, ...]) -> None:
        # OSError: the parent is gone; nothing to tell, the broker redelivers
        with self._send_lock, contextlib.suppress(OSError):
            self.pipe.send(item)

    # ------------------------------------------------------------------ threads

    def read_loop(self) -> None:
        """Batches from the parent into stage 1; a stop sets the give-up time at once,
        even while stage 2 is retrying against a database that is down."""
        while True:
            try:
                item = self.pipe.recv()
            except (EOFError, OSError):
                self._give_up_at = time.monotonic()
                self._inbox.put(None)
                return
            if item[0] == "batch":
                _, bid, rows = item
                self._inbox.put((bid, [Incoming._make(r) for r in rows]))
            else:  # "stop"
                self._give_up_at = time.monotonic() + float(item[1])
                self._inbox.put(None)
                return

    def prepare_loop(self) -> None:
        """Stage 1: parse and validate the next batch while stage 2 commits the previous."""
        try:
            while not self._abandon.is_set():
                item = self._inbox.get()
                if item is None:
                    return
                bid, batch = item
                prepared = self._retrying("prepare", batch, self.preparer.prepare, batch)
                if prepared is None:
                    self.send(("abandoned", bid))
                    self._abandon.set()
                    return
                self._handoff.put((bid, batch, prepared))
        finally:
            self._handoff.put(None)

    def write_loop(self) -> None:
        """Stage 2: commit, then tell the parent, which acknowledges."""
        while True:
            item = self._handoff.get()
            if item is None:
                return
            bid, batch, prepared = item
            if self._abandon.is_set():
                self.send(("abandoned", bid))
                continue
            started = time.monotonic()
            result = self._retrying("commit", batch, self._write, batch, prepared)
            if result is None:
                self._abandon.set()  # stopping with the database down: redelivered later
                self.send(("abandoned", bid))
                continue
            prepared, written = result
            committed = time.time()
            # lags as an array: one compact pickle, no datetime objects for the parent to build
            lags = array("d", [max(0.0, committed - ts.timestamp()) for ts in prepared.newest_ts])
            self.send(("done", bid, written, prepared.rejects, lags,
                       time.monotonic() - started, committed))

    # ------------------------------------------------------------------ database

    def _retrying(self, step: str, batch: list[Incoming],
                  work: Callable[..., Any], *args: Any) -> Any:
        """`work(conn, *args)`, retried with backoff while the database is unreachable; None when
        stopping before it succeeds (nothing is acknowledged then)."""
        delay = 0.2
        while True:
            try:
                # a short wait: while the database is down, this loop (not the pool) waits
                with self.pool.connection(timeout=5) as conn:
                    conn.autocommit = True  # write_batch opens the one explicit transaction
                    return work(conn, *args)
            except _TRANSIENT as exc:
                self.send(("db_error",))
                log.warning("ingest_db_unavailable step=%s messages=%s retry_in_s=%.1f error=%s",
                            step, len(batch), delay,
                            str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__)
            if time.monotonic() + delay > self._give_up_at or self._abandon.is_set():
                log.error("ingest_stop_without_commit messages=%s (the broker keeps them)",
                          len(batch))
                return None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            self._drop_broken_connections()

    def _write(self, conn: psycopg.Connection[Any], batch: list[Incoming],
               prepared: Prepared) -> tuple[Prepared, Written]:
        try:
            written = write_batch(conn, prepared, expect_duplicates=self._expect_duplicates)
            # resends come in runs (a redelivered in-flight window, a device's whole buffer):
            # after a batch with keys seen before, claim the next one key by key at once
            self._expect_duplicates = written.known_keys > 0
            return prepared, written
        except _TRANSIENT:
            raise
        except psycopg.Error as exc:
            # A row the validation let through but the database refuses: find the
            # message(s) responsible instead of blocking the whole batch.
            log.error("ingest_batch_refused messages=%s error=%s", len(batch), exc)
            return self._store_split(conn, batch)

    def _drop_broken_connections(self) -> None:
        # After a server restart the idle pooled connections are dead; replace them now
        # rather than failing on each of them in turn.
        try:
            self.pool.check()
        except Exception as exc:  # the database may still be down: the next try tells
            log.debug("ingest_pool_check_failed error=%s", exc)

    def _store_split(self, conn: psycopg.Connection[Any], batch: list[Incoming]
                     ) -> tuple[Prepared, Written]:
        if len(batch) == 1:
            prepared = Prepared()
            prepared.rejects.append(Reject(
                topic=batch[0].topic, device_id=None, msg_id=None,
                reason="store_refused: the database refused this message's rows",
                payload=batch[0].payload[: self.settings.ingest_dead_letter_payload_chars]
                .decode("utf-8", errors="replace"), payload_size=len(batch[0].payload)))
            return prepared, write_batch(conn, prepared)
        half = len(batch) // 2
        parts = []
        for part in (batch[:half], batch[half:]):
            prepared = self.preparer.prepare(conn, part)
            try:
                parts.append((prepared, write_batch(conn, prepared)))
            except _TRANSIENT:
                raise
            except psycopg.Error:
                parts.append(self._store_split(conn, part))
        merged = Prepared(rejects=parts[0][0].rejects + parts[1][0].rejects,
                          newest_ts=parts[0][0].newest_ts + parts[1][0].newest_ts)
        return merged, parts[0][1] + parts[1][1]


def main(pipe: Connection, settings: Settings, log_level: int) -> None:
    """Entry point of the worker process (spawned by IngestService.start)."""
    # The parent decides when to stop (SIGTERM/Ctrl-C reach the whole process group):
    # it flushes through this process, so this process must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = Worker(pipe, settings)
    try:
        worker.pool = db.open_pool(settings, settings.effective_database_url(),
                                   name="ingest")
    except Exception as exc:
        worker.send(("error", str(exc)))
        return
    # A process that runs ingest alone: see service.tune_gc.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    threads = [threading.Thread(target=t, name=f"ingest-{t.__name__}", daemon=True)
               for t in (worker.read_loop, worker.prepare_loop, worker.write_loop)]
    for t in threads:
        t.start()
    worker.send(("ready",))
    for t in threads[1:]:
        t.join()
    worker.pool.close()
    worker.send(("stopped",))
