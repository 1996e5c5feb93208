"""The ingest consumer: MQTT (paho, QoS 1, persistent session, manual acks) in, batched
database transactions out, acknowledgements only after the commit.

Two processes, because paho's per-message Python work and ours would otherwise share one
interpreter lock (their costs added up on one core): this one receives, batches and
acknowledges; the worker process (worker.py) parses, validates and commits.

Here, paho's network thread appends each message, as a plain tuple, to a list (no queue
and no wake-up per message). The dispatcher thread sends what has arrived, up to
batch_size messages and batch_bytes of payload, as one batch to the worker once the first
of them is GATHER_S old
and the worker has room (PIPELINE_DEPTH batches in flight: one being validated while the
previous commits), so batches grow with the load and stay small, hence fast, when it is
light. The results
thread acknowledges a batch once the worker reports its commit, on the connection that
delivered it. Nothing here needs a bound of its own: the broker sends no more than its
in-flight window (`max_inflight_messages` in the shipped config) of unacknowledged
messages, so while the database is down the window fills and delivery stops
(back-pressure), and nothing is acknowledged that is not committed."""

from __future__ import annotations

import gc
import itertools
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from coffeetrace.errors import ConfigError
from coffeetrace.ingest import worker
from coffeetrace.ingest.acks import ack_many
from coffeetrace.ingest.metrics import IngestMetrics, observe_many
from coffeetrace.ingest.store import Written
from coffeetrace.ingest.topics import Incoming, subscription
from coffeetrace.mqtt import new_client as new_mqtt_client
from coffeetrace.mqtt import parse_broker_url
from coffeetrace.settings import Settings

log = logging.getLogger(__name__)

# Batches handed to the worker and not yet answered: one being validated while the
# previous one commits. More would only make batches smaller (and per-batch costs larger).
PIPELINE_DEPTH = 2
# A batch leaves once its first message is this old (or it is full): at a low rate that
# adds at most this much latency; at a high one it keeps batches from getting so small that
# the database's per-transaction work (and its fsync) takes the CPU the messages need.
GATHER_S = 0.01
# The dispatcher sleeps this long at most when it has nothing to do (it is woken earlier
# by a message arriving or a batch being answered); it bounds how late a stop is noticed.
IDLE_WAIT_S = 0.05
# The worker process imports psycopg and pydantic and opens its pool before it is ready.
WORKER_START_S = 60.0


def _batch_length(inbox: list[Incoming], size: int, max_bytes: int) -> tuple[int, bool]:
    """The next batch: how many messages from the front of `inbox`, and whether it is full.

    A batch holds at most `size` messages and `max_bytes` of payload (a larger message goes
    alone): offline buffers of a few hundred readings each would otherwise make batches of
    hundreds of megabytes, and one long transaction instead of a pipeline."""
    total = 0
    for n, item in enumerate(itertools.islice(inbox, size)):
        total += len(item.payload)
        if total > max_bytes:
            return max(n, 1), True
    n = min(len(inbox), size)
    return n, n == size


def tune_gc() -> None:
    """For a process that runs ingest alone: collect the young generation less often.

    A batch creates hundreds of thousands of short-lived tuples; with the default
    threshold (700) the collector runs thousands of times per batch (about 20 % of the
    consumer's time in the benchmark). Called by `coffeetrace ingest`, not by `up`.
    The worker process always does the same for itself.
    """
    gc.freeze()  # everything imported so far is permanent: never scan it again
    gc.set_threshold(50_000, 20, 100)


@dataclass(frozen=True)
class Committed:
    """One committed batch, as the commit hook sees it (for observers such as the benchmarks)."""

    messages: int
    first_received: float  # time.time() when its first message arrived
    written: Written
    dead_letters: dict[str, int]  # reason code -> rows written to dead_letters
    dropped: dict[str, int]  # reason code -> dead letters beyond the cap (counted only)
    lags: Sequence[float]  # commit time minus newest device timestamp, per message with data
    committed_at: float  # time.time() after the commit


CommitHook = Callable[[Committed], None]


class IngestService:
    """Consume device messages into the database; `start()` returns once subscribed."""

    def __init__(self, settings: Settings, *, on_commit: CommitHook | None = None) -> None:
        self.settings = settings
        self.metrics = IngestMetrics()
        self.on_commit = on_commit
        self.topic_filter = subscription(settings.topic_prefix, settings.mqtt_shared_group)
        # paho's thread appends, the dispatcher takes from the front (both atomic under the GIL)
        self._inbox: list[Incoming] = []
        self._pending: dict[int, list[Incoming]] = {}  # sent to the worker, unanswered
        self._batch_ids = itertools.count()
        self._wake = threading.Event()
        self._waiting = False  # the dispatcher sleeps: the next message must wake it
        self._generation = 0
        self._intake_open = True
        self._stopping = threading.Event()
        self._stop_timeout = 10.0
        self._worker_done = threading.Event()
        self._subscribed = threading.Event()
        self._subscribe_error: str | None = None
        self._client: paho.Client | None = None
        self._proc: Any = None
        self._pipe: Any = None
        self._dispatcher: threading.Thread | None = None
        self._results: threading.Thread | None = None
        self._metrics_server: Any = None
        self.committed_batches = 0
        self.failure: str | None = None  # why ingest cannot go on, once it cannot
        self.unacknowledged = 0  # messages given up at stop (the broker redelivers them)
        self._connected = False
        self._last_commit = time.time()

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 15.0) -> None:
        s = self.settings
        addr = parse_broker_url(s.effective_mqtt_url())
        self._start_worker()
        client = new_mqtt_client(addr, s.mqtt_client_id, clean_session=False)
        client.manual_ack_set(True)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        try:
            client.connect(addr.host, addr.port, keepalive=30)
        except OSError as exc:
            self._client = None
            self.stop(timeout=1)
            raise ConfigError(
                f"cannot connect to the MQTT broker at {addr.redacted()}: {exc}. "
                "Check COFFEETRACE_MQTT_URL.",
                setting="COFFEETRACE_MQTT_URL",
            ) from exc
        client.loop_start()
        if not self._subscribed.wait(timeout_s) or self._subscribe_error:
            reason = self._subscribe_error or f"no SUBACK within {timeout_s:g} s"
            self.stop(timeout=1)
            raise ConfigError(
                f"ingest could not subscribe to {self.topic_filter} at "
                f"{addr.redacted()}: {reason}. Check the broker user and ACL.",
                setting="COFFEETRACE_MQTT_URL",
            )
        self._metrics_server = self.metrics.serve(
            s.ingest_metrics_port, self.readiness, lambda: self.healthy, s.ingest_metrics_host
        )
        log.info(
            "ingest_started broker=%s filter=%s client_id=%s batch=%s max_delay_ms=%s",
            addr.redacted(),
            self.topic_filter,
            s.mqtt_client_id,
            s.ingest_batch_size,
            s.ingest_max_delay_ms,
        )

    def _start_worker(self) -> None:
        # spawn, not fork: the worker must not inherit paho's socket or this end of the pipe
        # (when this process is killed, the worker sees end-of-file and stops)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=worker.main,
            name="coffeetrace-ingest-worker",
            args=(child, self.settings, logging.getLogger().level),
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._pipe = parent
        if not parent.poll(WORKER_START_S):
            self._proc.kill()
            raise ConfigError("the ingest worker process did not start")
        try:
            first = parent.recv()
        except EOFError:
            first = ("error", f"the ingest worker process exited ({self._proc.exitcode})")
        if first[0] != "ready":
            self._proc.join(5)
            raise ConfigError(first[1], setting="COFFEETRACE_DATABASE_URL")
        self._dispatcher = threading.Thread(
            target=self._guarded(self._dispatch_loop), name="ingest-dispatch", daemon=True
        )
        self._results = threading.Thread(
            target=self._guarded(self._results_loop), name="ingest-results", daemon=True
        )
        self._dispatcher.start()
        self._results.start()

    def stop(self, timeout: float = 10) -> None:
        """Commit and acknowledge what was received, then disconnect (the session stays)."""
        self._intake_open = False  # later deliveries stay unacknowledged: redelivered next time
        give_up_at = time.monotonic() + timeout
        self._stop_timeout = timeout
        self._stopping.set()
        self._wake.set()
        for thread in (self._dispatcher, self._results):
            if thread is not None:
                thread.join(max(0.1, give_up_at - time.monotonic()) + 2)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        if self._proc is not None:
            self._proc.join(max(0.1, give_up_at - time.monotonic()) + 2)
            if self._proc.is_alive():
                log.error("ingest_worker_killed (did not stop in time)")
                self._proc.kill()
                self._proc.join(5)
            self._proc = None
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        self.unacknowledged += self.pending()  # never sent to the worker, or never answered
        log.info(
            "ingest_stopped batches=%s unacknowledged=%s",
            self.committed_batches,
            self.unacknowledged,
        )

    def _guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        """`target` as a thread body that cannot die quietly: an unexpected error is one
        log line and makes the service unhealthy (`coffeetrace ingest` then exits 1)."""

        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self._fail(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}")
                log.critical("ingest_thread_failed %s", self.failure, exc_info=True)
                self._worker_done.set()
                self._wake.set()

        return run

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason

    @property
    def healthy(self) -> bool:
        """False once a thread or the worker process has gone without being asked to stop,
        or paho's network thread has ended."""
        if self._stopping.is_set():
            return True
        if self._worker_done.is_set() or self.failure is not None:
            return False
        client = self._client
        thread = getattr(client, "_thread", None) if client is not None else None
        if client is not None and thread is not None and not thread.is_alive():
            self._fail("the MQTT network thread ended")
            return False
        return True

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason) for /readyz: alive, connected, and not stalled (messages waiting
        longer than COFFEETRACE_INGEST_STALL_S with no commit meanwhile)."""
        if not self.healthy:
            return False, f"failed: {self.failure or 'the worker process exited'}"
        if not self._connected:
            return False, "not connected to the MQTT broker"
        waiting = self.pending()
        if waiting:
            oldest = self._oldest_waiting()
            now = time.time()
            idle = now - max(self._last_commit, oldest if oldest is not None else now)
            if idle > self.settings.ingest_stall_s:
                return False, (
                    f"stalled: {waiting} messages waiting, nothing committed for "
                    f"{idle:.0f} s (the database may be down)"
                )
        return True, f"consuming; {waiting} messages in progress"

    def _oldest_waiting(self) -> float | None:
        batches = list(self._pending.values())
        if batches and batches[0]:
            return min(b[0].received_at for b in batches if b)
        inbox = self._inbox
        return inbox[0].received_at if inbox else None

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def pending(self) -> int:
        """Messages received and not yet answered by the worker (0 when idle)."""
        return len(self._inbox) + sum(len(b) for b in list(self._pending.values()))

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: Any, reason: Any, properties: Any = None
    ) -> None:
        if reason.is_failure:
            log.error("ingest_connect_refused reason=%s", reason)
            self._subscribe_error = f"connection refused: {reason}"
            self._subscribed.set()
            return
        # Messages of the previous connection can no longer be acknowledged; the broker
        # redelivers them on this one and the ledger drops the copies already stored.
        self._generation += 1
        self._connected = True
        log.info(
            "ingest_connected session_present=%s generation=%s",
            getattr(flags, "session_present", None),
            self._generation,
        )
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(
        self, client: paho.Client, userdata: object, mid: int, reasons: Any, properties: Any = None
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._subscribe_error = f"subscription refused: {failed[0]}"
            log.error("ingest_subscribe_refused filter=%s reason=%s", self.topic_filter, failed[0])
        self._subscribed.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: object, flags: Any, reason: Any, properties: Any = None
    ) -> None:
        self._connected = False
        if not self._stopping.is_set():
            log.warning("ingest_disconnected reason=%s (paho reconnects with backoff)", reason)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        # The hot path of this process: keep it to one named tuple and one append.
        if not self._intake_open:
            return
        self._inbox.append(
            # paho delivers bytes (its type says bytes | bytearray)
            Incoming(msg.topic, msg.payload, msg.mid, msg.qos, self._generation, time.time())  # type: ignore[arg-type]
        )
        if self._waiting:
            self._wake.set()

    # ------------------------------------------------------------------ dispatcher

    def _dispatch_loop(self) -> None:
        """Send batches to the worker: what has arrived, up to batch_size messages and
        batch_bytes of payload, once its first message is GATHER_S old (or the batch is full)
        and fewer than PIPELINE_DEPTH batches are in flight; on stop, everything left."""
        inbox, size = self._inbox, self.settings.ingest_batch_size
        max_bytes = self.settings.ingest_batch_bytes
        # COFFEETRACE_INGEST_MAX_DELAY_MS stays an upper bound of the gathering time
        gather = min(GATHER_S, self.settings.ingest_max_delay_ms / 1000)
        while not self._worker_done.is_set():
            self._wake.clear()  # a wake-up from here on ends the wait below
            stopping = self._stopping.is_set()
            if not inbox:
                if stopping:
                    break
                self._waiting = True  # the next message wakes us (and only then: cheap)
                if not inbox:
                    self._wake.wait(IDLE_WAIT_S)
                self._waiting = False
                continue
            if not stopping and len(self._pending) >= PIPELINE_DEPTH:
                self._wake.wait(IDLE_WAIT_S)  # a result (or a stop) wakes us
                continue
            count, full = _batch_length(inbox, size, max_bytes)
            wait = inbox[0].received_at + gather - time.time()
            if not stopping and wait > 0 and not full:
                self._wake.wait(wait)  # messages do not wake us: they only add to the batch
                continue
            batch = inbox[:count]
            del inbox[:count]  # appends only go to the end: this is the same prefix
            self._send_batch(batch)
        if not self._worker_done.is_set():
            self._send(("stop", max(0.0, self._stop_timeout)))

    def _send_batch(self, batch: list[Incoming]) -> None:
        bid = next(self._batch_ids)
        self._pending[bid] = batch
        self.metrics.received.inc(len(batch))
        self._send(("batch", bid, batch))

    def _send(self, item: tuple[Any, ...]) -> None:
        try:
            self._pipe.send(item)
        except (OSError, ValueError) as exc:  # the worker is gone: nothing more is acked
            log.error("ingest_worker_unreachable error=%s", exc)
            self._worker_done.set()

    # ------------------------------------------------------------------ results

    def _results_loop(self) -> None:
        """Acknowledge what the worker committed; count it."""
        try:
            while True:
                try:
                    item = self._pipe.recv()
                except (EOFError, OSError):
                    if not self._stopping.is_set():
                        proc = self._proc
                        if proc is not None:
                            proc.join(1)
                        self._fail(
                            f"the worker process exited (code {proc.exitcode if proc else None})"
                        )
                        log.error(
                            "ingest_worker_exited code=%s: nothing more is acknowledged "
                            "(the broker keeps the messages)",
                            proc.exitcode if proc else None,
                        )
                    return
                kind = item[0]
                if kind == "done":
                    _, bid, written, dead, dropped, lags, commit_s, committed = item
                    batch = self._pending.pop(bid)
                    self._ack(batch)
                    self._last_commit = time.time()
                    self.metrics.commit_seconds.observe(commit_s)
                    self._count(
                        Committed(
                            messages=len(batch),
                            first_received=batch[0].received_at,
                            written=written,
                            dead_letters=dead,
                            dropped=dropped,
                            lags=lags,
                            committed_at=committed,
                        )
                    )
                elif kind == "fatal":
                    self._fail(f"worker: {item[1]}")
                elif kind == "abandoned":
                    self.unacknowledged += len(self._pending.pop(item[1], ()))
                elif kind == "db_error":
                    self.metrics.db_errors.inc()
                elif kind == "stopped":
                    return
                self._wake.set()  # the dispatcher may be waiting for room: once per batch
        finally:
            self._worker_done.set()
            self._wake.set()

    def _ack(self, batch: list[Incoming]) -> None:
        client = self._client
        if client is None:
            return
        generation = self._generation
        # only the connection that delivered a message can acknowledge it
        ack_many(client, [m.mid for m in batch if m.qos == 1 and m.generation == generation])
        for m in batch:
            if m.qos == 2 and m.generation == generation:  # not subscribed with QoS 2
                client.ack(m.mid, m.qos)

    def _count(self, c: Committed) -> None:
        m, written = self.metrics, c.written
        self.committed_batches += 1
        m.batch_size.observe(c.messages)
        m.stored.labels("harvest").inc(written.harvests)
        m.stored.labels("telemetry").inc(written.sets - written.harvests)
        m.readings.inc(written.readings)
        m.duplicates.inc(written.duplicates)
        for code, n in c.dead_letters.items():
            m.dead_letters.labels(code).inc(n)
        for code, n in c.dropped.items():
            m.dead_letters_dropped.labels(code).inc(n)
        observe_many(m.lag_seconds, c.lags)
        if self.on_commit is not None:
            self.on_commit(c)
        log.debug(
            "ingest_batch_committed messages=%s stored=%s duplicates=%s dead_letters=%s",
            c.messages,
            written.sets,
            written.duplicates,
            written.dead_letters,
        )
