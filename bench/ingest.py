"""`coffeetrace bench ingest`: real MQTT end to end, measured against ceilings in the same run.

(a) ceiling: a bare paho subscriber that only counts, draining N queued QoS 1 messages;
(b) ceiling: raw COPY into sensor_readings of the very readings (c) stores with 100 a
    message (rows built before the clock starts), 20,000 rows a transaction;
(c) coffeetrace ingest, received-to-committed, draining the same N messages (1 reading
    each), then N/10 messages of 100 readings (25 reading sets x 4 metrics, an offline
    buffer), then publish-to-commit latency at half of (c)'s 1-reading rate and at 500
    messages/s (`mosquitto_pub -l` publishing at a steady pace).

Each ratio is measured within a round, from two runs next to each other in time ((a) and
(c) with 1 reading a message; (b) and (c) with 100, both into an emptied table), and
reported as the median over the rounds; other work on the machine moves single figures
by 2-3x, and a ratio of runs minutes apart would measure that too.

Messages are queued in the broker before each drain (the consumer's persistent session
exists, it is just offline), so the publisher's speed does not limit (a) or (c). The
publisher runs in its own process. Servers: a Mosquitto of its own with the shipped
config; a scratch database on the configured server (or an embedded one), dropped after.
Ingest runs with the per-device rate limits off (one device sends everything here);
`bench ingest-flood` (ingest_flood.py) measures them.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg.rows import dict_row

from coffeetrace.credentials import new_device_secret
from coffeetrace.db import scratch_database
from coffeetrace.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from coffeetrace.errors import ConfigError
from coffeetrace.ingest.service import Committed, IngestService
from coffeetrace.ingest.store import READING_TYPES
from coffeetrace.ingest.topics import device_topic, subscription
from coffeetrace.migrate import migrate
from coffeetrace.mqtt import new_client, parse_broker_url
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace_bench", "ingest.sql")

LAG_SAMPLE = 50_000
METRICS4 = ("soilMoistureVwc", "soilTemperature", "temperature", "relativeHumidity")


# --------------------------------------------------------------------------- publisher


def _reading_sets(seq: int, sets: int, now_ms: int) -> list[dict[str, Any]]:
    """The reading sets of benchmark message `seq`: one set of one reading, or an offline
    buffer of `sets` sets of 4 readings, 6 s apart, up to `now_ms`."""
    if sets == 1:
        return [{"seq": seq, "ts": now_ms, "values": {"soilMoistureVwc": 20 + seq % 50 / 10}}]
    return [
        {
            "seq": seq * sets + i,
            "ts": now_ms - (sets - i) * 6_000,
            "values": {m: 20 + (seq + i) % 50 / 10 for m in METRICS4},
        }
        for i in range(sets)
    ]


def _payload(seq: int, sets: int, behind_s: float = 0) -> bytes:
    """Message `seq`, stamped with the time now (`behind_s` seconds earlier, if given)."""
    found = _reading_sets(seq, sets, int((time.time() - behind_s) * 1000))
    return json.dumps(found[0] if sets == 1 else found).encode()


def _rows(device: str, plot_id: Any, first: int, count: int, sets: int) -> list[tuple[Any, ...]]:
    """The sensor_readings rows that ingest stores for messages first..first+count-1."""
    now_ms = int(time.time() * 1000)
    return [
        (datetime.fromtimestamp(found["ts"] / 1000, UTC), device, plot_id, None, metric, value)
        for seq in range(first, first + count)
        for found in _reading_sets(seq, sets, now_ms)
        for metric, value in found["values"].items()
    ]


def _publish_proc(
    url: str,
    topic: str,
    first: int,
    count: int,
    sets: int,
    rate: float,
    start_at: float,
    behind_s: float,
    out: Any,
) -> None:
    """Publish `count` QoS 1 messages (at `rate` per second, 0 = flat out), from wall-clock
    time `start_at` (0: at once), stamped `behind_s` seconds in the past; wait for PUBACKs.
    Puts (acknowledged, seconds, wall-clock time of the first publish) on `out`."""
    import paho.mqtt.client as paho

    client = new_client(parse_broker_url(url), f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked = [0]
    lock = threading.Lock()

    def on_publish(c: paho.Client, u: Any, mid: int, reason: Any, props: Any = None) -> None:
        with lock:
            acked[0] += 1

    client.on_publish = on_publish
    client.connect(parse_broker_url(url).host, parse_broker_url(url).port)
    client.loop_start()
    _sleep_until(start_at)
    started, started_wall = time.monotonic(), time.time()
    for i in range(count):
        if rate > 0:
            due = started + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        client.publish(topic, _payload(first + i, sets, behind_s), qos=1)
    deadline = time.monotonic() + 300
    while acked[0] < count and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()
    out.put((acked[0], time.monotonic() - started, started_wall))


def _sleep_until(wall: float) -> None:
    """Sleep until wall-clock time `wall` (the publisher processes' common schedule)."""
    pause = wall - time.time()
    if pause > 0:
        time.sleep(pause)


def publish_paced(url: str, topic: str, first: int, count: int, rate: float) -> None:
    """`count` 1-reading messages at `rate`/s through `mosquitto_pub -l` (C, so the
    publisher takes little of the CPU the consumer is measured on); `ts` = publish time."""
    addr = parse_broker_url(url)
    proc = subprocess.Popen(
        [
            "mosquitto_pub",
            "-h",
            addr.host,
            "-p",
            str(addr.port),
            "-q",
            "1",
            "-i",
            f"bench-pub-{uuid.uuid4().hex[:8]}",
            "-t",
            topic,
            "-l",
        ],
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    started = time.monotonic()
    sent = 0
    while sent < count:
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        if due > sent:
            proc.stdin.write(b"".join(_payload(first + i, 1) + b"\n" for i in range(sent, due)))
            proc.stdin.flush()
            sent = due
        else:
            time.sleep(0.0005)
    proc.stdin.close()
    if proc.wait(120) != 0:
        raise ConfigError("mosquitto_pub failed in the latency run")


def start_process(target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
    """Spawn a publisher process `target(*args, out)`; (process, its result queue)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    return proc, out


def finish_process(started: tuple[Any, Any], count: int, timeout: float = 600) -> tuple[Any, ...]:
    """Wait for a publisher process of `start_process`; its result, whose first item (how many
    messages the broker acknowledged) must reach `count`."""
    proc, out = started
    result = out.get(timeout=timeout)
    proc.join(30)
    if result[0] < count:
        raise ConfigError(f"the bench broker acknowledged {result[0]} of {count} messages")
    return tuple(result)


def start_publisher(
    url: str,
    topic: str,
    first: int,
    count: int,
    sets: int = 1,
    rate: float = 0,
    *,
    start_at: float = 0,
    behind_s: float = 0,
) -> tuple[Any, Any]:
    """Start the publisher process (see _publish_proc); finish it with finish_process."""
    return start_process(_publish_proc, url, topic, first, count, sets, rate, start_at, behind_s)


def publish(url: str, topic: str, first: int, count: int, sets: int = 1, rate: float = 0) -> float:
    """Run the publisher process to completion; its duration in seconds."""
    return float(finish_process(start_publisher(url, topic, first, count, sets, rate), count)[1])


# --------------------------------------------------------------------------- servers


def _server_dir(stack: ExitStack) -> Path:
    # Mosquitto and PostgreSQL drop root privileges: the folder must be traversable.
    path = Path(tempfile.mkdtemp(prefix="coffeetrace-bench-"))
    path.chmod(0o711)
    stack.callback(shutil.rmtree, path, True)
    return path


def server_url(settings: Settings, database_url: str, stack: ExitStack) -> str:
    """The server to benchmark on: the given or configured one, else an embedded one."""
    url = database_url or settings.database_url
    if url:
        return url
    pg = EmbeddedPostgres(_server_dir(stack), free_port())
    pg.start()
    stack.callback(pg.stop, "immediate")
    return pg.admin_url()


def bench_servers(
    settings: Settings, database_url: str, stack: ExitStack, name: str
) -> tuple[EmbeddedBroker, str]:
    """A Mosquitto of the bench's own (the shipped config) and a migrated scratch database
    named after `name`, both gone when `stack` closes."""
    broker = EmbeddedBroker(_server_dir(stack), free_port())
    broker.start()
    stack.callback(broker.stop)
    db_url = stack.enter_context(scratch_database(server_url(settings, database_url, stack), name))
    return broker, db_url


def _world(url: str, devices: int = 1) -> tuple[list[str], Any, Any]:
    """A cooperative with one plot and `devices` soil nodes on it: their ids, the cooperative's
    and the plot's. Its registry versions are signed with a key made for the scratch
    database and thrown away with it (nothing in the benchmark checks them)."""
    from coffeetrace.trace import registry
    from coffeetrace.trace.keys import KeyRing

    with (
        psycopg.connect(url, row_factory=dict_row) as conn,
        tempfile.TemporaryDirectory(prefix="ct-bench-keys-") as keys_dir,
    ):
        keys = KeyRing(Path(keys_dir))
        migrate(conn)
        coop = registry.create_cooperative(conn, f"bench-{uuid.uuid4().hex[:6]}", "Bench")
        farm = registry.create_farm(conn, coop["id"], "F-BENCH", keys=keys)
        plot = registry.create_plot(
            conn,
            coop["id"],
            farm["id"],
            "P-1",
            {"type": "Point", "coordinates": [108.05, 12.68]},
            1.0,
            keys=keys,
        )
        ids = [
            registry.register_device(
                conn, coop["id"], "soil_node", plot_id=plot["id"], secret=new_device_secret()
            ).username
            for _ in range(devices)
        ]
        # readings of the last 10 minutes are in the 100-reading messages
        conn.execute(SQL["bench_ingest_backdate_devices"])
        conn.commit()
    return ids, coop["id"], plot["id"]


# The per-device limits switched off: a rate of 0 turns its token bucket off (the bursts
# then do not count, and must stay >= 1).
NO_DEVICE_LIMITS = {"ingest_device_msgs_per_s": 0.0, "ingest_device_sets_per_s": 0.0}


def with_settings(settings: Settings, **values: Any) -> Settings:
    """`settings` with `values`, leaving out fields this build's Settings does not have."""
    known = type(settings).model_fields
    return settings.model_copy(update={k: v for k, v in values.items() if k in known})


def bench_settings(
    settings: Settings, db_url: str, broker: EmbeddedBroker, say: Callable[[str], None]
) -> Settings:
    """`settings` for an ingest of the bench's own: its database, broker and a topic prefix
    and client id of its own; says where it runs."""
    say(
        f"broker: mosquitto (shipped config) on {broker.port}; database: "
        f"{db_url.split('dbname=')[-1].split()[0]}; {os.cpu_count()} CPUs"
    )
    return settings.model_copy(
        update={
            "database_url": db_url,
            "mqtt_url": broker.url,
            "topic_prefix": f"bench-{uuid.uuid4().hex[:6]}/coffeetrace/v1",
            "mqtt_client_id": f"bench-ingest-{uuid.uuid4().hex[:6]}",
            "mqtt_shared_group": "",
            "ingest_metrics_port": 0,
            # ingest signs each batch onto the chain: the keys of the scratch cooperative
            # live, and go, with the bench's broker folder
            "keys_dir": broker.data_dir / "keys",
        }
    )


# --------------------------------------------------------------------------- measurements


# the running IngestService's worker process: its RSS counts with this process's
_WORKER_PID: list[int | None] = [None]


def _rss_parts_mb() -> tuple[float, float]:
    """RSS of this process (the paho side of ingest, and the benchmark) and of the worker."""
    worker = 0
    pid = _WORKER_PID[0]
    if pid is not None:
        with suppress(psutil.Error):  # between two runs
            worker = psutil.Process(pid).memory_info().rss
    return psutil.Process().memory_info().rss / 1e6, worker / 1e6


def _rss_mb() -> float:
    return sum(_rss_parts_mb())


def _create_session(url: str, client_id: str, topic_filter: str) -> None:
    """Open a persistent session subscribed to `topic_filter`, then go offline."""
    done = threading.Event()
    client = new_client(parse_broker_url(url), client_id, clean_session=False)
    client.on_subscribe = lambda *a: done.set()
    client.on_connect = lambda c, *a: c.subscribe(topic_filter, qos=1)
    addr = parse_broker_url(url)
    client.connect(addr.host, addr.port)
    client.loop_start()
    if not done.wait(10):
        raise ConfigError("the bench broker did not answer SUBSCRIBE")
    client.disconnect()
    client.loop_stop()


def drain_bare(url: str, client_id: str, count: int) -> float:
    got = [0]
    first: list[float] = []
    done = threading.Event()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        if not first:
            first.append(time.monotonic())
        got[0] += 1
        if got[0] >= count:
            done.set()

    client = new_client(parse_broker_url(url), client_id, clean_session=False)
    client.on_message = on_message
    addr = parse_broker_url(url)
    client.connect(addr.host, addr.port)
    client.loop_start()
    ok = done.wait(300)
    end = time.monotonic()
    client.disconnect()
    client.loop_stop()
    _end_session(url, client_id)
    if not ok:
        raise ConfigError(f"bare subscriber got {got[0]} of {count} messages")
    return count / (end - first[0])


def _end_session(url: str, client_id: str) -> None:
    """Drop a persistent session, so the broker stops queueing for it."""
    addr = parse_broker_url(url)
    client = new_client(addr, client_id, clean_session=True)
    client.connect(addr.host, addr.port)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def raw_copy(url: str, rows: list[tuple[Any, ...]], batch: int) -> float:
    """(b) Readings per second of COPY of `rows` (built beforehand) into sensor_readings, one
    transaction per `batch` rows."""
    with psycopg.connect(url) as conn:
        started = time.monotonic()
        for start in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor().copy(SQL["bench_ingest_copy_readings"]) as copy:
                copy.set_types(READING_TYPES)
                for row in rows[start : start + batch]:
                    copy.write_row(row)
        return len(rows) / (time.monotonic() - started)


def _empty_store(url: str) -> None:
    """(b) and (c) with 100 readings a message each start from an empty table and ledger."""
    with psycopg.connect(url) as conn:
        conn.execute(SQL["bench_ingest_empty_store"])


class _Committed:
    """Counts what the service committed, and the publish-to-commit lag of each message."""

    def __init__(self) -> None:
        self.messages = 0
        self.readings = 0
        self.first_received: float | None = None
        self.last_commit = 0.0
        self.lags: list[float] = []
        self.seen = 0
        self.done = threading.Event()
        self.target = 0

    def __call__(self, c: Committed) -> None:
        if self.first_received is None or c.first_received < self.first_received:
            self.first_received = c.first_received
        self.messages += c.messages
        self.readings += c.written.readings
        self.last_commit = c.committed_at
        for lag in c.lags:
            # a fixed-size uniform sample (reservoir), so that a long run's own bookkeeping
            # does not show up as growth in the RSS being measured
            self.seen += 1
            if len(self.lags) < LAG_SAMPLE:
                self.lags.append(lag)
            else:
                slot = random.randrange(self.seen)
                if slot < LAG_SAMPLE:
                    self.lags[slot] = lag
        if self.messages >= self.target:
            self.done.set()

    def reset(self, target: int) -> None:
        self.__init__()  # type: ignore[misc]
        self.target = target


def _drain_ingest(settings: Settings, hook: _Committed, count: int) -> tuple[float, float]:
    hook.reset(count)
    service = IngestService(settings, on_commit=hook)
    service.start()
    _WORKER_PID[0] = service.worker_pid
    try:
        if not hook.done.wait(600):
            raise ConfigError(f"ingest committed {hook.messages} of {count} messages")
    finally:
        service.stop()
    seconds = hook.last_commit - (hook.first_received or hook.last_commit)
    return count / seconds, hook.readings / seconds


def _latency(
    s: Settings, hook: _Committed, topic: str, first: int, rate: float, seconds: float
) -> tuple[float, float, int, int]:
    """p50 and p99 publish-to-commit seconds of `rate` messages/s for `seconds`."""
    count = max(int(rate * seconds), 100)
    hook.reset(count)
    service = IngestService(s, on_commit=hook)
    service.start()
    _WORKER_PID[0] = service.worker_pid
    try:
        publish_paced(s.mqtt_url, topic, first, count, rate)
        hook.done.wait(120)
    finally:
        service.stop()
    lags = sorted(hook.lags)
    if len(lags) < 2:
        return float("nan"), float("nan"), hook.messages, count
    q = statistics.quantiles(lags, n=100)
    return q[49], q[98], hook.messages, count


@dataclass
class _Throughput:
    """The throughput rounds: best rates, and the per-round ratios."""

    a: float = 0.0  # bare subscriber, msgs/s
    b: float = 0.0  # raw COPY, readings/s
    c1_msgs: float = 0.0
    c1_readings: float = 0.0
    c100_msgs: float = 0.0
    c100_readings: float = 0.0
    over_a: list[float] = field(default_factory=list)
    over_b: list[float] = field(default_factory=list)


def _throughput(
    s: Settings,
    broker_url: str,
    db_url: str,
    hook: _Committed,
    device: str,
    plot_id: Any,
    n1: int,
    n100: int,
    repeat: int,
    say: Callable[[str], None],
) -> _Throughput:
    """(a), (c1), (b), (c100) per round. Other work on the machine moves single figures
    by 2-3x. So each round measures a ratio from two runs next to each other in time, (a)
    then (c) with 1 reading a message, (b) then (c) with 100, and the ratios reported are
    the medians over the rounds; the rates reported are each the best round's."""
    prefix = s.topic_prefix
    topic = device_topic(prefix, device, "telemetry")
    t = _Throughput()
    for r in range(repeat):
        base = 10_000_000 * (r + 1)
        # (a) bare subscriber
        # (under a prefix of its own, so that ingest's session does not queue these)
        bare_id = f"bench-bare-{uuid.uuid4().hex[:6]}"
        _create_session(broker_url, bare_id, subscription(prefix + "-bare"))
        publish(broker_url, device_topic(prefix + "-bare", device, "telemetry"), base, n1)
        a_r = drain_bare(broker_url, bare_id, n1)
        # (c1) ingest, one reading per message
        publish(broker_url, topic, base + 1_000_000, n1)
        c1_r = _drain_ingest(s, hook, n1)
        # (b) raw COPY of the very readings that (c100) then stores, 100 per message;
        # the messages are queued first, so that the publisher is done before (b)
        first100 = (base + 2_000_000) // 25
        publish(broker_url, topic, first100, n100, sets=25)
        rows = _rows(device, plot_id, first100, n100, 25)
        _empty_store(db_url)
        b_r = raw_copy(db_url, rows, s.ingest_batch_size * 10)
        del rows
        # (c100) ingest, 100 readings per message, into the same empty table
        _empty_store(db_url)
        c100_r = _drain_ingest(s, hook, n100)
        t.over_a.append(c1_r[0] / a_r)
        t.over_b.append(c100_r[1] / b_r)
        say(
            f"round {r + 1}: (a) bare subscriber {a_r:,.0f} msgs/s; (c) 1 reading/msg "
            f"{c1_r[0]:,.0f} msgs/s ({t.over_a[-1]:.2f} of (a)); (b) raw COPY {b_r:,.0f} "
            f"readings/s; (c) 100 readings/msg {c100_r[0]:,.0f} msgs/s = "
            f"{c100_r[1]:,.0f} readings/s ({t.over_b[-1]:.2f} of (b))"
        )
        t.a, t.b = max(t.a, a_r), max(t.b, b_r)
        if c1_r[0] > t.c1_msgs:
            t.c1_msgs, t.c1_readings = c1_r
        if c100_r[0] > t.c100_msgs:
            t.c100_msgs, t.c100_readings = c100_r
    return t


def _soak(
    s: Settings,
    hook: _Committed,
    topic: str,
    rate: float,
    seconds: float,
    sampler: _RssSampler,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """RSS over a long steady run: the first and the last minute, of both processes
    together and of each (a process that settles and one that grows can add up to a sum
    that looks flat, or the other way round)."""
    begin = len(sampler.parts)
    s50, s99, _, _ = _latency(s, hook, topic, 5_000_000, rate, seconds)
    # from the first sample with the soak's worker process running
    parts = [p for p in sampler.parts[begin:] if p[1] > 0]
    window = [sum(p) for p in parts]
    minute = min(120, max(1, len(window) // 4))  # samples are 0.5 s apart
    soak: dict[str, Any] = {
        "soak_seconds": seconds,
        "soak_rate_msgs_s": round(rate),
        "soak_p50_ms": round(s50 * 1000, 1),
        "soak_p99_ms": round(s99 * 1000, 1),
        "soak_rss_max_mb": round(max(window), 1) if window else None,
    }
    for name, series in (
        ("", window),
        ("_paho", [p[0] for p in parts]),
        ("_worker", [p[1] for p in parts]),
    ):
        head, tail = series[:minute], series[-minute:]
        soak[f"soak_rss{name}_first_mb"] = round(statistics.median(head), 1) if head else None
        soak[f"soak_rss{name}_last_mb"] = round(statistics.median(tail), 1) if tail else None
    say(
        f"soak {seconds:g} s at {rate:,.0f} msgs/s: RSS median of the first "
        f"{minute / 2:g} s {soak['soak_rss_first_mb']} MB (paho process "
        f"{soak['soak_rss_paho_first_mb']}, worker {soak['soak_rss_worker_first_mb']}), "
        f"of the last {soak['soak_rss_last_mb']} MB ({soak['soak_rss_paho_last_mb']}, "
        f"{soak['soak_rss_worker_last_mb']}); p99 {s99 * 1000:.0f} ms"
    )
    return soak


def run_bench(
    settings: Settings,
    *,
    messages: int,
    latency_seconds: float,
    database_url: str,
    say: Callable[[str], None],
    repeat: int = 3,
    soak_seconds: float = 0,
) -> dict[str, Any]:
    if shutil.which("mosquitto") is None:
        raise ConfigError("`coffeetrace bench ingest` needs mosquitto on PATH")
    n1 = messages
    n100 = max(messages // 10, 100)
    with ExitStack() as stack:
        broker, db_url = bench_servers(settings, database_url, stack, "ct_bench_ingest")
        (device,), _coop, plot_id = _world(db_url)
        s = bench_settings(settings, db_url, broker, say)
        topic = device_topic(s.topic_prefix, device, "telemetry")
        # No per-device limits here: these runs measure the pipeline's ceiling with one device
        # sending tens of thousands of messages a second, which its limits would throttle
        # (`bench ingest-flood` measures the limits).
        s = with_settings(s, **NO_DEVICE_LIMITS)
        rss_start = _rss_mb()
        hook = _Committed()
        sampler = _RssSampler()
        stack.callback(sampler.stop)
        _create_session(broker.url, s.mqtt_client_id, subscription(s.topic_prefix))
        sampler.start()
        t = _throughput(s, broker.url, db_url, hook, device, plot_id, n1, n100, repeat, say)
        c1_over_a, c100_over_b = statistics.median(t.over_a), statistics.median(t.over_b)
        say(f"(a) bare paho subscriber: {t.a:,.0f} msgs/s (best round)")
        say(f"(b) raw COPY: {t.b:,.0f} readings/s (best round)")
        say(
            f"(c) ingest, 1 reading/msg: {t.c1_msgs:,.0f} msgs/s (best round); "
            f"{c1_over_a:.2f} of (a) (median of the rounds)"
        )
        say(
            f"(c) ingest, 100 readings/msg: {t.c100_msgs:,.0f} msgs/s, {t.c100_readings:,.0f} "
            f"readings/s (best round); {c100_over_b:.2f} of (b) (median of the rounds)"
        )

        # latency at half of the 1-reading rate, publisher and consumer running together,
        # then at a steady province-like rate (DOMAIN.md: ~350 messages/s)
        rate = t.c1_msgs / 2
        p50, p99, committed, published = _latency(s, hook, topic, 3_000_000, rate, latency_seconds)
        say(
            f"latency at {rate:,.0f} msgs/s for {latency_seconds:g} s: publish-to-commit "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )
        low_rate = 500.0
        low50, low99, _, _ = _latency(s, hook, topic, 4_000_000, low_rate, latency_seconds)
        say(
            f"latency at {low_rate:,.0f} msgs/s: p50 {low50 * 1000:.0f} ms, "
            f"p99 {low99 * 1000:.0f} ms"
        )
        soak = (
            _soak(s, hook, topic, t.c1_msgs / 4, soak_seconds, sampler, say)
            if soak_seconds > 0
            else {}
        )
        sampler.stop()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
        say(
            f"RSS: start {rss_start:.0f} MB; during ingest runs {sampler.first:.0f} -> "
            f"{sampler.last:.0f} MB (max {sampler.peak:.0f}); process peak {peak:.0f} MB"
        )
        figures = {
            "bench": "ingest",
            "messages": n1,
            "messages_100": n100,
            "cpus": os.cpu_count(),
            "repeat": repeat,
            "batch_size": s.ingest_batch_size,
            "max_delay_ms": s.ingest_max_delay_ms,
            "a_bare_msgs_s": round(t.a),
            "b_copy_readings_s": round(t.b),
            "c1_msgs_s": round(t.c1_msgs),
            "c1_readings_s": round(t.c1_readings),
            "c100_msgs_s": round(t.c100_msgs),
            "c100_readings_s": round(t.c100_readings),
            "c1_over_a": round(c1_over_a, 3),
            "c100_over_b": round(c100_over_b, 3),
            "c1_over_a_rounds": [round(x, 3) for x in t.over_a],
            "c100_over_b_rounds": [round(x, 3) for x in t.over_b],
            "latency_rate_msgs_s": round(rate),
            "latency_seconds": latency_seconds,
            "latency_p50_ms": round(p50 * 1000, 1),
            "latency_p99_ms": round(p99 * 1000, 1),
            "latency_committed": committed,
            "latency_published": published,
            "latency_500_p50_ms": round(low50 * 1000, 1),
            "latency_500_p99_ms": round(low99 * 1000, 1),
            "rss_ingest_first_mb": round(sampler.first),
            "rss_ingest_last_mb": round(sampler.last),
            "rss_ingest_max_mb": round(sampler.peak),
            "rss_peak_mb": round(peak),
            **soak,
        }
        print(json.dumps(figures), flush=True)
        return figures
    raise AssertionError("unreachable")


class _RssSampler:
    """RSS of this process and of the ingest worker process every half second while ingest
    runs (flat = no growth)."""

    def __init__(self) -> None:
        self.parts: list[tuple[float, float]] = []  # this process, the worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.parts.append(_rss_parts_mb())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    @property
    def samples(self) -> list[float]:
        """Both processes together."""
        return [sum(p) for p in self.parts]

    @property
    def first(self) -> float:
        return self.samples[0] if self.samples else _rss_mb()

    @property
    def last(self) -> float:
        return self.samples[-1] if self.samples else _rss_mb()

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else _rss_mb()
