"""The ingest consumer: MQTT (paho, QoS 1, persistent session, manual acks) in, batched
database transactions out, acknowledgements only after the commit.

Threads: paho's network loop hands each message, as an `Incoming`, to a queue. Stage 1
takes batches from it (by size, by maximum delay, or as soon as no message has come for
LINGER_S, e.g. because the broker has stopped sending while our unacknowledged window is
full) and parses and validates them; stage 2 commits each batch and then acknowledges it,
while stage 1 prepares the next. The queue needs no bound of its own: the broker sends no
more than its in-flight window (`max_inflight_messages` in the shipped config) of
unacknowledged messages, so while the database is down the window fills and delivery
stops (back-pressure), and nothing is acknowledged that is not committed."""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
import psycopg
from coffeetrace.ingest.devices import DeviceCache
from coffeetrace.ingest.metrics import IngestMetrics
from coffeetrace.ingest.store import Written, write_batch
from coffeetrace.ingest.topics import Incoming, subscription
from coffeetrace.ingest.validate import Prepared, Preparer, Reject

from coffeetrace import db
from coffeetrace.errors import ConfigError
from coffeetrace.mqtt import new_client as new_mqtt_client
from coffeetrace.mqtt import parse_broker_url
from coffeetrace.settings import Settings

log = logging.getLogger(__name__)

# With no new message for this long, the batch is committed before its maximum delay:
# either traffic is light, or the broker's in-flight window is exhausted and waits for acks.
LINGER_S = 0.005
# Errors that mean "the database is unreachable": retry the same batch, acknowledge nothing.
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)

def tune_gc() -> None:
    """For a process that runs ingest alone: collect the young generation less often.

    A batch creates hundreds of thousands of short-lived tuples; with the default
    threshold (700) the collector runs thousands of times per batch (about 20 % of the
    consumer's time in the benchmark). Called by `coffeetrace ingest`, not by `up`.
    """
    gc.freeze()  # everything imported so far is permanent: never scan it again
    gc.set_threshold(50_000, 20, 100)


CommitHook = Callable[[list[Incoming], Prepared, Written, float], None]


class IngestService:
    """Consume device messages into the database; `start()` returns once subscribed."""

    def __init__(self, settings: Settings, *, on_commit: CommitHook | None = None) -> None:
        self.settings = settings
        self.metrics = IngestMetrics()
        self.cache = DeviceCache(ttl_s=settings.ingest_device_cache_ttl_s)
        self.preparer = Preparer(settings.topic_prefix, self.cache,
                                 max_payload_bytes=settings.ingest_max_payload_bytes,
                                 clock_skew_s=settings.ingest_clock_skew_s,
                                 payload_chars=settings.ingest_dead_letter_payload_chars)
        self.on_commit = on_commit
        self.topic_filter = subscription(settings.topic_prefix, settings.mqtt_shared_group)
        self._queue: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self._generation = 0
        self._intake_open = True
        self._stopping = threading.Event()
        self._give_up_at = float("inf")
        self._subscribed = threading.Event()
        self._subscribe_error: str | None = None
        self._client: paho.Client | None = None
        self._pool: Any = None
        self._preparer: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        # stage 1 -> stage 2; None = no more batches
        self._handoff: queue.Queue[tuple[list[Incoming], Prepared] | None] = queue.Queue(1)
        self._abandon = threading.Event()
        self._metrics_server: Any = None
        self.committed_batches = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 15.0) -> None:
        s = self.settings
        addr = parse_broker_url(s.effective_mqtt_url())
        self._pool = db.open_pool(s, s.effective_database_url(), name="ingest")
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
            self._pool.close()
            raise ConfigError(f"cannot connect to the MQTT broker at {addr.redacted()}: {exc}. "
                              "Check COFFEETRACE_MQTT_URL.",
                              setting="COFFEETRACE_MQTT_URL") from exc
        self._preparer = threading.Thread(target=self._prepare_loop, name="ingest-prepare",
                                          daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._preparer.start()
        self._writer.start()
        client.loop_start()
        if not self._subscribed.wait(timeout_s) or self._subscribe_error:
            reason = self._subscribe_error or f"no SUBACK within {timeout_s:g} s"
            self.stop(timeout=1)
            raise ConfigError(f"ingest could not subscribe to {self.topic_filter} at "
                              f"{addr.redacted()}: {reason}. Check the broker user and ACL.",
                              setting="COFFEETRACE_MQTT_URL")
        self._metrics_server = self.metrics.serve(s.ingest_metrics_port)
        log.info("ingest_started broker=%s filter=%s client_id=%s batch=%s max_delay_ms=%s",
                 addr.redacted(), self.topic_filter, s.mqtt_client_id, s.ingest_batch_size,
                 s.ingest_max_delay_ms)

    def stop(self, timeout: float = 10) -> None:
        """Commit and acknowledge what was received, then disconnect (the session stays)."""
        self._intake_open = False  # later deliveries stay unacknowledged: redelivered next time
        self._give_up_at = time.monotonic() + timeout
        self._stopping.set()
        for thread in (self._preparer, self._writer):
            if thread is not None:
                thread.join(max(0.1, self._give_up_at - time.monotonic()) + 1)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None
        log.info("ingest_stopped batches=%s", self.committed_batches)

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: paho.Client, userdata: object, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            log.error("ingest_connect_refused reason=%s", reason)
            self._subscribe_error = f"connection refused: {reason}"
            self._subscribed.set()
            return
        # Messages of the previous connection can no longer be acknowledged; the broker
        # redelivers them on this one and the ledger drops the copies already stored.
        self._generation += 1
        log.info("ingest_connected session_present=%s generation=%s",
                 getattr(flags, "session_present", None), self._generation)
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int, reasons: Any,
                      properties: Any = None) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._subscribe_error = f"subscription refused: {failed[0]}"
            log.error("ingest_subscribe_refused filter=%s reason=%s", self.topic_filter, failed[0])
        self._subscribed.set()

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        if not self._stopping.is_set():
            log.warning("ingest_disconnected reason=%s (paho reconnects with backoff)", reason)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if not self._intake_open:
            return
        self._queue.put(Incoming(topic=msg.topic, payload=msg.payload, mid=msg.mid, qos=msg.qos,
                                 generation=self._generation, received_at=time.time()))

    # ------------------------------------------------------------------ writer

    def _collect(self) -> list[Incoming]:
        """The next batch: up to batch_size messages, waiting at most max_delay for them."""
        q = self._queue
        while True:
            try:
                first = q.get(timeout=0.05)
                break
            except queue.Empty:
                if self._stopping.is_set():
                    return []
        batch = [first]
        size = self.settings.ingest_batch_size
        deadline = time.monotonic() + self.settings.ingest_max_delay_ms / 1000
        while len(batch) < size:
            try:
                batch.append(q.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(q.get(timeout=min(remaining, LINGER_S)))
            except queue.Empty:
                break
        return batch

    def _prepare_loop(self) -> None:
        """Stage 1: batches, parsed and validated, handed to the writer (one at a time)."""
        try:
            while not self._abandon.is_set():
                batch = self._collect()
                if not batch:
                    return
                self.metrics.received.inc(len(batch))
                prepared = self._retrying("prepare", batch, self.preparer.prepare, batch)
                if prepared is None:
                    return
                while not self._abandon.is_set():
                    try:
                        self._handoff.put((batch, prepared), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        finally:
            while self._writer is not None and self._writer.is_alive():
                try:
                    self._handoff.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _write_loop(self) -> None:
        """Stage 2: commit, then acknowledge. It overlaps with stage 1 preparing the next
        batch, so Python work and the database's work on a batch run side by side."""
        while True:
            item = self._handoff.get()
            if item is None:
                return
            batch, prepared = item
            started = time.monotonic()
            result = self._retrying("commit", batch, self._write, batch, prepared)
            if result is None:
                self._abandon.set()  # stopping with the database down: redelivered later
                return
            committed = time.time()
            self.metrics.commit_seconds.observe(time.monotonic() - started)
            prepared, written = result
            self._ack(batch)
            self._count(batch, prepared, written, committed)

    def _retrying(self, step: str, batch: list[Incoming],
                  work: Callable[..., Any], *args: Any) -> Any:
        """`work(conn, *args)`, retried with backoff while the database is unreachable; None when
        stopping before it succeeds (nothing is acknowledged then)."""
        delay = 0.2
        while True:
            try:
                # a short wait: while the database is down, this loop (not the pool) waits
                with self._pool.connection(timeout=5) as conn:
                    conn.autocommit = True  # write_batch opens the one explicit transaction
                    return work(conn, *args)
            except _TRANSIENT as exc:
                self.metrics.db_errors.inc()
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
            return prepared, write_batch(conn, prepared)
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
            self._pool.check()
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
        a, b = parts[0][1], parts[1][1]
        return merged, Written(sets=a.sets + b.sets, readings=a.readings + b.readings,
                               duplicates=a.duplicates + b.duplicates,
                               dead_letters=a.dead_letters + b.dead_letters,
                               statuses=a.statuses + b.statuses,
                               harvests=a.harvests + b.harvests)

    def _ack(self, batch: list[Incoming]) -> None:
        client = self._client
        if client is None:
            return
        generation = self._generation
        for msg in batch:
            if msg.qos and msg.generation == generation:
                client.ack(msg.mid, msg.qos)

    def _count(self, batch: list[Incoming], prepared: Prepared, written: Written,
               committed: float) -> None:
        m = self.metrics
        self.committed_batches += 1
        m.batch_size.observe(len(batch))
        m.stored.labels("harvest").inc(written.harvests)
        m.stored.labels("telemetry").inc(written.sets - written.harvests)
        m.readings.inc(written.readings)
        m.duplicates.inc(written.duplicates)
        for r in prepared.rejects:
            m.dead_letters.labels(r.code).inc()
        now = datetime.fromtimestamp(committed, UTC)
        for ts in prepared.newest_ts:
            m.lag_seconds.observe(max(0.0, (now - ts).total_seconds()))
        if self.on_commit is not None:
            self.on_commit(batch, prepared, written, committed)
        log.debug("ingest_batch_committed messages=%s stored=%s duplicates=%s dead_letters=%s",
                  len(batch), written.sets, written.duplicates, written.dead_letters)
