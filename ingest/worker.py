"""The ingest worker process: parse, validate and commit whole batches for the paho process.

Why a process of its own: paho's per-message Python work (packet parsing, PUBACK) and ours
(JSON, pydantic, registry checks, ledger and COPY rows) used to share one interpreter lock,
so their costs added up on one core. Here the paho process only receives, batches and
acknowledges; this process does the rest on the other core. It never talks to the broker:
it answers each batch with "committed" (the paho process then acknowledges it on the
connection that delivered it) or with nothing (the broker redelivers it later).

Protocol on one duplex pipe (each item one pickle):
  parent -> worker: ("batch", id, [Incoming, ...])
                    ("stop", seconds)  commit what was received, give up after `seconds`
  worker -> parent: ("ready",) | ("error", text)                      once, after start
                    ("done", id, Written, {reason: dead letters}, {reason: dropped},
                     lags, commit_s, committed_at)
                    ("fatal", text)    a thread died; the process exits FATAL_EXIT
                    ("abandoned", id)  stopping with the database still down
                    ("db_error",)      one failed attempt (for the metric)
                    ("stopped",)
EOF on the pipe (the parent was killed) counts as a stop with no time left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import queue
import signal
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import psycopg

from coffeetrace import db
from coffeetrace.errors import first_line
from coffeetrace.ingest.store import EvidenceError, Written, precompute_evidence, write_batch
from coffeetrace.ingest.topics import Incoming, parse_topic
from coffeetrace.ingest.validate import Prepared, Preparer, ScreenedBatch
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing

log = logging.getLogger("coffeetrace.ingest.worker")

# SQLSTATE classes that say "this data": a value or row the database refuses (22 data
# exception, 23 integrity constraint, 54 program limit such as an index row too large).
# A batch failing with one of these holds a bad message: it is split until that message
# is alone and dead-lettered. Every other database error (connection lost, server shutting
# down, serialisation failure, disk full, a schema that does not match) is the database's
# own: nothing is acknowledged and the batch is retried, however long that takes.
_CONTENT_SQLSTATE_CLASSES = ("22", "23", "54")
# Exit code of the worker process when one of its threads died of an unexpected error.
FATAL_EXIT = 3


def is_content_error(exc: BaseException) -> bool:
    """True when `exc` was caused by what a message holds, not by the database's state."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        return state[:2] in _CONTENT_SQLSTATE_CLASSES
    # Anything else raised while handling a batch (RecursionError, UnicodeError, a
    # ValueError of a library...) is unclassified: the batch is split to find its message.
    return isinstance(exc, Exception)


class _Isolate(Exception):
    """Raised inside a retried step: this batch must be split to find a bad message."""


class Worker:
    def __init__(self, pipe: Connection, settings: Settings) -> None:
        self.pipe = pipe
        self.settings = settings
        self.preparer = Preparer.from_settings(settings)
        self.dead_letter_cap = settings.ingest_dead_letters_per_device_hour
        # each committed batch is signed onto its cooperatives' chains (store.write_batch)
        self.keys = KeyRing(settings.effective_keys_dir())
        self.pool: Any = None
        self._send_lock = threading.Lock()  # the writer and the retry loops both send
        self._inbox: queue.SimpleQueue[tuple[int, list[Incoming]] | None] = queue.SimpleQueue()
        # stage 1 -> stage 2; None = no more batches. A None batch asks stage 2 to isolate.
        self._handoff: queue.Queue[tuple[int, ScreenedBatch, Prepared | None] | None] = queue.Queue(
            1
        )
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
                self._inbox.put((bid, rows))
            else:  # "stop"
                self._give_up_at = time.monotonic() + float(item[1])
                self._inbox.put(None)
                return

    def prepare_loop(self) -> None:
        """Stage 1: screen and bind the next batch while stage 2 commits the previous."""
        try:
            while not self._abandon.is_set():
                item = self._inbox.get()
                if item is None:
                    return
                bid, batch = item
                screened = self.preparer.screen(batch)
                try:
                    prepared = self._retrying("prepare", len(batch), self._bind, screened)
                except _Isolate:
                    prepared = None  # stage 2 finds the message the database refused
                else:
                    if prepared is None:
                        self.send(("abandoned", bid))
                        self._abandon.set()
                        return
                self._handoff.put((bid, screened, prepared))
        finally:
            self._handoff.put(None)

    def write_loop(self) -> None:
        """Stage 2: commit, then tell the parent, which acknowledges."""
        while True:
            item = self._handoff.get()
            if item is None:
                return
            bid, screened, prepared = item
            if self._abandon.is_set():
                self.send(("abandoned", bid))
                continue
            started = time.monotonic()
            count = len(screened.messages) + len(screened.rejects)
            result: tuple[Prepared, Written] | None
            try:
                if prepared is None:
                    raise _Isolate
                result = self._retrying("commit", count, self._write, prepared)
            except _Isolate:
                result = self._retrying("isolate", count, self._isolate, screened)
            if result is None:
                self._abandon.set()  # stopping with the database down: redelivered later
                self.send(("abandoned", bid))
                continue
            prepared, written = result
            committed = time.time()
            # lags as an array: one compact pickle, no datetime objects for the parent to build
            lags = array("d", [max(0.0, committed - ts.timestamp()) for ts in prepared.newest_ts])
            self.send(
                (
                    "done",
                    bid,
                    written,
                    dict(Counter(r.code for r in prepared.rejects)),
                    dict(Counter(prepared.dropped)),
                    lags,
                    time.monotonic() - started,
                    committed,
                )
            )

    # ------------------------------------------------------------------ database

    def _retrying(self, step: str, messages: int, work: Callable[..., Any], *args: Any) -> Any:
        """`work(conn, *args)`, retried with backoff while the database fails by itself;
        None when stopping before it succeeds (nothing is acknowledged then). A failure
        caused by the batch's content raises _Isolate."""
        delay = 0.2
        while True:
            try:
                # a short wait: while the database is down, this loop (not the pool) waits
                with self.pool.connection(timeout=5) as conn:
                    conn.autocommit = True  # write_batch opens the one explicit transaction
                    return work(conn, *args)
            except _Isolate:
                raise
            except EvidenceError as exc:  # the chain's or the keys' problem, not a message's
                self.send(("db_error",))
                log.error(
                    "ingest_evidence_unavailable step=%s messages=%s retry_in_s=%.1f error=%s",
                    step,
                    messages,
                    delay,
                    first_line(exc),
                )
            except psycopg.Error as exc:
                if is_content_error(exc):  # raised outside write_batch's own handling
                    log.warning(
                        "ingest_batch_refused step=%s messages=%s error=%s",
                        step,
                        messages,
                        first_line(exc),
                    )
                    raise _Isolate from exc
                self.send(("db_error",))
                log.warning(
                    "ingest_db_unavailable step=%s messages=%s retry_in_s=%.1f "
                    "sqlstate=%s error=%s",
                    step,
                    messages,
                    delay,
                    exc.sqlstate,
                    first_line(exc),
                )
            except Exception as exc:  # noqa: BLE001  # unclassified: find the message
                log.warning(
                    "ingest_batch_failed step=%s messages=%s error=%s: %s",
                    step,
                    messages,
                    type(exc).__name__,
                    first_line(exc),
                )
                raise _Isolate from exc
            if time.monotonic() + delay > self._give_up_at or self._abandon.is_set():
                log.error(
                    "ingest_stop_without_commit messages=%s (the broker keeps them)", messages
                )
                return None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            self._drop_broken_connections()

    def _bind(self, conn: psycopg.Connection[Any], screened: ScreenedBatch) -> Prepared:
        prepared = self.preparer.bind(conn, screened)
        precompute_evidence(prepared)
        return prepared

    def _write(self, conn: psycopg.Connection[Any], prepared: Prepared) -> tuple[Prepared, Written]:
        written = write_batch(
            conn,
            prepared,
            keys=self.keys,
            expect_duplicates=self._expect_duplicates,
            dead_letter_cap=self.dead_letter_cap,
        )
        # resends come in runs (a redelivered in-flight window, a device's whole buffer):
        # after a batch with keys seen before, claim the next one key by key at once
        self._expect_duplicates = written.known_keys > 0
        return prepared, written

    def _drop_broken_connections(self) -> None:
        # After a server restart the idle pooled connections are dead; replace them now
        # rather than failing on each of them in turn.
        try:
            self.pool.check()
        except Exception as exc:  # the database may still be down: the next try tells
            log.debug("ingest_pool_check_failed error=%s", exc)

    def _isolate(
        self, conn: psycopg.Connection[Any], batch: ScreenedBatch
    ) -> tuple[Prepared, Written]:
        """Store `batch` in parts: halves, recursively, until each message that fails on
        its own is alone; that one is dead-lettered with the reason, the others commit.
        Database failures of its own still propagate (and are retried by the caller)."""
        try:
            return self._write(conn, self.preparer.bind(conn, batch))
        except EvidenceError:
            raise  # no message's fault: retried whole by the caller
        except psycopg.Error as exc:
            if not is_content_error(exc):
                raise
            error: BaseException = exc
        except Exception as exc:  # noqa: BLE001  # unclassified: keep splitting
            error = exc
        if len(batch.messages) <= 1:
            try:
                return self._write(conn, self._dead_letter(batch, error))
            except psycopg.Error as exc:
                if not is_content_error(exc):
                    raise
                # not expected (every text was made safe): keep only what cannot fail
                log.error("ingest_dead_letter_refused error=%s", first_line(exc))
                return self._write(conn, self._dead_letter(batch, error, bare=True))
        half = len(batch.messages) // 2
        first = ScreenedBatch(messages=batch.messages[:half], rejects=batch.rejects)
        second = ScreenedBatch(messages=batch.messages[half:], rejects=[])
        parts = [self._isolate(conn, first), self._isolate(conn, second)]
        merged = Prepared(
            rejects=parts[0][0].rejects + parts[1][0].rejects,
            newest_ts=parts[0][0].newest_ts + parts[1][0].newest_ts,
            dropped=parts[0][0].dropped + parts[1][0].dropped,
        )
        return merged, parts[0][1] + parts[1][1]

    def _dead_letter(
        self, batch: ScreenedBatch, error: BaseException, *, bare: bool = False
    ) -> Prepared:
        """The batch's screening rejects, plus its one message dead-lettered for `error`;
        `bare`: every row reduced to ASCII reasons and hex payloads."""
        out = Prepared(rejects=list(batch.rejects))
        for s in batch.messages:
            reason = (
                f"store_refused: the database refused this message "
                f"(SQLSTATE {error.sqlstate}): {first_line(error)}"
                if isinstance(error, psycopg.Error)
                else f"unprocessable: {type(error).__name__}: {first_line(error)}"
            )
            log.error("ingest_message_dead_lettered topic=%s reason=%s", s.msg.topic, reason)
            info = parse_topic(self.preparer.prefix, s.msg.topic)
            out.rejects.append(
                self.preparer.reject(s.msg, info.device_id if info else None, s.msg.payload, reason)
            )
        if bare:
            chars = self.settings.ingest_dead_letter_payload_chars
            out.rejects = [
                dataclasses.replace(
                    r,
                    topic=r.topic.encode("ascii", "replace").decode(),
                    msg_id=None,
                    reason=r.reason.encode("ascii", "replace").decode(),
                    encoding="hex",
                    payload=r.payload.encode("utf-8", "replace")[: chars // 2].hex(),
                )
                for r in out.rejects
            ]
        return out


def _guarded(target: Callable[[], None], worker: Worker) -> Callable[[], None]:
    """`target` as a thread body that cannot die quietly: an unexpected error is logged in
    one line, reported to the parent and ends this process (nothing more is committed, so
    nothing more is acknowledged; the parent exits non-zero and the broker redelivers)."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            text = f"{threading.current_thread().name}: {type(exc).__name__}: {first_line(exc)}"
            log.critical("ingest_worker_failed %s", text, exc_info=True)
            worker.send(("fatal", text))
            os._exit(FATAL_EXIT)

    return run


def main(pipe: Connection, settings: Settings, log_level: int) -> None:
    """Entry point of the worker process (spawned by IngestService.start)."""
    # The parent decides when to stop (SIGTERM/Ctrl-C reach the whole process group):
    # it flushes through this process, so this process must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = Worker(pipe, settings)
    try:
        # the key directory must be usable before anything is received (private keys 0600)
        worker.keys.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        worker.pool = db.open_pool(settings, settings.effective_database_url(), name="ingest")
    except Exception as exc:
        worker.send(("error", str(exc)))
        return
    # A process that runs ingest alone: see service.tune_gc.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    threads = [
        threading.Thread(target=_guarded(t, worker), name=f"ingest-{t.__name__}", daemon=True)
        for t in (worker.read_loop, worker.prepare_loop, worker.write_loop)
    ]
    for t in threads:
        t.start()
    worker.send(("ready",))
    for t in threads[1:]:
        t.join()
    worker.pool.close()
    worker.send(("stopped",))
