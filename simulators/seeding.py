"""Writing a plan into the registry, idempotently.

Cooperative, products, farms (with their private data), plots and devices go through
`trace.registry`, like any other client of the store. Trees do too for small worlds;
large ones use the bulk path (`copy_trees`): one COPY per batch of plots into the same
table, with the same columns and the same random public ids the registry would give.
Either way every registry row gets its registry version (a signed chain event, with
`keys`); the bulk path records one event per batch of up to `registry_versions.CHUNK`
trees and COPYs the rows with its seq.

A second seeding of the same plan finds the cooperative by its code and returns the
existing ids (device credentials are rotated, since only their hashes are stored).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString, cast
from uuid import UUID

import psycopg
from psycopg import sql

from coffeetrace.credentials import new_device_secret, verify_mosquitto_hash
from coffeetrace.errors import Conflict
from coffeetrace.simulators.physics import LOCAL
from coffeetrace.simulators.plan import PlotPlan, WorldPlan
from coffeetrace.sql import load_queries
from coffeetrace.trace import registry, registry_versions
from coffeetrace.trace.keys import KeyRing

log = logging.getLogger(__name__)

# connections of the project hand out dict rows
Conn = psycopg.Connection[Any]

BULK_THRESHOLD = 20_000  # more trees than this: COPY instead of one insert per tree
SPECIES = "Coffea canephora"


SQL = load_queries("coffeetrace.simulators", "simulators.sql")


@dataclass
class SeededWorld:
    plan: WorldPlan
    cooperative_id: UUID
    farm_ids: dict[str, UUID]
    plot_ids: dict[str, UUID]
    product_ids: dict[str, UUID]  # by product kind
    credentials: dict[str, str]  # device id -> password (plain, shown once)
    created: bool  # False when an earlier run had seeded it
    trees: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def device_ids(self) -> list[str]:
        return [d.id for d in self.plan.devices]


def installed_at(plan: WorldPlan) -> datetime:
    """When the simulated devices were installed: before the simulated season."""
    return datetime(plan.spec.season_year, 4, 1, tzinfo=LOCAL)


def seed_world(
    conn: Conn,
    plan: WorldPlan,
    *,
    keys: KeyRing,
    bulk: bool | None = None,
    progress: Callable[[int], None] | None = None,
    known_passwords: dict[str, str] | None = None,
) -> SeededWorld:
    """Create (or find) the plan's cooperative; the caller owns the transaction. `keys`:
    the cooperatives' signing keys, which sign the registry versions.

    `known_passwords` (device id -> password from an earlier run) are kept when they
    still match the stored hash, so a broker password file written in between stays valid.
    """
    spec = plan.spec
    existing = registry.get_cooperative_by_code(conn, spec.coop_code)
    if existing is not None:
        return _existing(conn, plan, existing["id"], known_passwords or {})
    t0 = time.perf_counter()
    coop = registry.create_cooperative(
        conn, spec.coop_code, spec.coop_name, gs1_company_prefix=spec.gs1_company_prefix
    )
    coop_id = coop["id"]
    products = {
        p.kind: registry.create_product(conn, coop_id, p.name, keys=keys, kind=p.kind, gtin=p.gtin)[
            "id"
        ]
        for p in plan.products
    }
    farm_ids: dict[str, UUID] = {}
    plot_ids: dict[str, UUID] = {}
    for farm in plan.farms:
        row = registry.create_farm(
            conn,
            coop_id,
            farm.code,
            keys=keys,
            display_name=farm.display_name,
            display_name_consent=farm.consent,
            district=farm.district.name,
            commune=farm.commune,
            private={
                "owner_name": farm.owner_name,
                "phone": farm.phone,
                "data_consent": farm.consent,
            },
        )
        farm_ids[farm.code] = row["id"]
        for plot in farm.plots:
            plot_ids[plot.code] = registry.create_plot(
                conn,
                coop_id,
                row["id"],
                plot.code,
                plot.geometry,
                plot.area_ha,
                keys=keys,
                altitude_m=plot.altitude_m,
                growing_area_code=plot.growing_area_code,
                district=plot.district.name,
            )["id"]
    t1 = time.perf_counter()
    use_bulk = bulk if bulk is not None else plan.tree_count > BULK_THRESHOLD
    if use_bulk:
        trees = copy_trees(conn, coop_id, plan.plots, plot_ids, keys=keys, progress=progress)
    else:
        trees = 0
        for plot in plan.plots:
            trees += len(
                registry.create_trees(
                    conn,
                    coop_id,
                    plot_ids[plot.code],
                    [
                        dict(
                            tag_code=tree.tag_code,
                            lon=tree.lon,
                            lat=tree.lat,
                            cultivar=tree.cultivar,
                            planted_on=tree.planted_on,
                            status=tree.status,
                        )
                        for tree in plot.trees()
                    ],
                    keys=keys,
                )
            )
            if progress is not None:
                progress(plot.tree_count)
    t2 = time.perf_counter()
    credentials = {}
    for device in plan.devices:
        # scales and phones weigh for the whole farm: bound to no plot, they name each tree
        plot_id = (
            plot_ids[device.plot_code] if device.kind in ("soil_node", "weather_station") else None
        )
        issued = registry.register_device(
            conn,
            coop_id,
            device.kind,
            plot_id=plot_id,
            device_id=device.id,
            secret=new_device_secret(),
        )
        credentials[device.id] = issued.password
    conn.execute(
        SQL["backdate_devices"],
        dict(cooperative_id=coop_id, ids=list(credentials), installed_at=installed_at(plan)),
    )
    t3 = time.perf_counter()
    log.info(
        "world_seeded cooperative=%s farms=%d plots=%d trees=%d devices=%d bulk=%s",
        spec.coop_code,
        len(farm_ids),
        len(plot_ids),
        trees,
        len(credentials),
        use_bulk,
    )
    return SeededWorld(
        plan,
        coop_id,
        farm_ids,
        plot_ids,
        products,
        credentials,
        True,
        trees,
        {"registry_s": t1 - t0, "trees_s": t2 - t1, "devices_s": t3 - t2},
    )


def _existing(
    conn: Conn, plan: WorldPlan, coop_id: UUID, known_passwords: dict[str, str]
) -> SeededWorld:
    farms = {
        r["code"]: r["id"]
        for r in conn.execute(SQL["farms_of_cooperative"], {"cooperative_id": coop_id})
    }
    plots = {
        r["code"]: r["id"]
        for r in conn.execute(SQL["plots_of_cooperative"], {"cooperative_id": coop_id})
    }
    products = {
        r["kind"]: r["id"]
        for r in conn.execute(SQL["products_of_cooperative"], {"cooperative_id": coop_id})
    }
    known = {
        r["id"]: r["credential_hash"]
        for r in conn.execute(SQL["device_ids_of_cooperative"], {"cooperative_id": coop_id})
    }
    missing = [d.code for f in plan.farms for d in f.plots if d.code not in plots]
    if missing:
        raise Conflict(
            f"cooperative {plan.spec.coop_code!r} exists but was seeded from another plan "
            f"(plots {', '.join(missing[:3])} are missing); use another --coop code",
            constraint="cooperatives_code_key",
        )
    credentials = {}
    for device in plan.devices:
        old = known_passwords.get(device.id)
        if device.id in known and old and verify_mosquitto_hash(old, known[device.id]):
            credentials[device.id] = old
        elif device.id in known:
            credentials[device.id] = registry.rotate_device_credential(
                conn, coop_id, device.id, secret=new_device_secret()
            ).password
        else:
            plot_id = (
                plots[device.plot_code] if device.kind in ("soil_node", "weather_station") else None
            )
            credentials[device.id] = registry.register_device(
                conn,
                coop_id,
                device.kind,
                plot_id=plot_id,
                device_id=device.id,
                secret=new_device_secret(),
            ).password
    conn.execute(
        SQL["backdate_devices"],
        dict(cooperative_id=coop_id, ids=list(credentials), installed_at=installed_at(plan)),
    )
    trees = sum(r["n"] for r in conn.execute(SQL["trees_per_plot"], {"cooperative_id": coop_id}))
    log.info("world_found cooperative=%s farms=%d trees=%d", plan.spec.coop_code, len(farms), trees)
    return SeededWorld(plan, coop_id, farms, plots, products, credentials, False, trees)


# ------------------------------------------------------------------ bulk trees


class TreeIds:
    """Time-ordered UUIDs (version 7 layout) for bulk-loaded trees.

    Internal ids only (the public id stays random): consecutive ids append to the
    primary-key index instead of landing on random pages. 24 random bits per run keep
    runs in the same millisecond apart.
    """

    def __init__(self) -> None:
        ms = f"{int(time.time() * 1000):012x}"
        rnd = os.urandom(3).hex()
        self.prefix = f"{ms[:8]}-{ms[8:12]}-7{rnd[:3]}-8{rnd[3:]}-"
        self.n = 0

    def take(self, count: int) -> list[str]:
        start, self.n = self.n, self.n + count
        return [f"{self.prefix}{i:012x}" for i in range(start, start + count)]


_B32 = b"abcdefghijklmnopqrstuvwxyz234567"
_FULL = bytes(_B32[b & 31] for b in range(256))
_LAST = bytes(_B32[b & 28] for b in range(256))  # the 26th character carries 3 bits


def public_ids(n: int) -> list[str]:
    """`n` random 128-bit public ids in the format of `credentials.new_public_id` (26
    base32 characters, lower case), made in bulk: translate tables instead of one
    b32encode call per id."""
    body = os.urandom(25 * n).translate(_FULL).decode()
    last = os.urandom(n).translate(_LAST).decode()
    return [body[i * 25 : (i + 1) * 25] + last[i] for i in range(n)]


@dataclass
class TreeBatch:
    """Trees of one or more plots as COPY text rows (columns of the `copy_trees` query,
    without the last one, event_seq) and their registry facts [(id, facts)]."""

    lines: bytes
    records: list[tuple[str, dict[str, Any]]]

    @property
    def count(self) -> int:
        return len(self.records)

    def copy_data(self, event_seq: int) -> bytes:
        """The rows with their event_seq: the registry event that records them."""
        return self.lines.replace(b"\n", b"\t%d\n" % event_seq)


def tree_copy_lines(coop_id: UUID, plot: PlotPlan, plot_id: UUID, ids: TreeIds) -> TreeBatch:
    """The plot's trees as COPY text rows and registry facts."""
    tail = f"\t{coop_id}\t{plot_id}\t"
    pub = public_ids(plot.tree_count)
    own = ids.take(plot.tree_count)
    lines = []
    records = []
    plot_text = str(plot_id)
    for i, (tag, coords, cultivar, planted, status) in enumerate(plot.tree_rows()):
        lines.append(
            f"{own[i]}\t{pub[i]}\t{tag}{tail}{coords}\t{SPECIES}\t{cultivar}\t{planted}\t{status}\n"
        )
        lon, lat = coords.split("\t")
        # registry_versions.facts("tree", row) of the row as stored, built directly (a
        # million of them: no intermediate row); tests check the two agree
        records.append(
            (
                own[i],
                {
                    "public_id": pub[i],
                    "tag_code": tag,
                    "plot_id": plot_text,
                    "lon": float(lon),
                    "lat": float(lat),
                    "species": SPECIES,
                    "cultivar": cultivar,
                    "planted_on": planted,
                    "status": status,
                },
            )
        )
    return TreeBatch("".join(lines).encode(), records)


def copy_trees(
    conn: Conn,
    coop_id: UUID,
    plots: Iterable[PlotPlan],
    plot_ids: dict[str, UUID],
    *,
    keys: KeyRing,
    progress: Callable[[int], None] | None = None,
    keep: list[bytes] | None = None,
    rebuild: bool | None = None,
    chunk: int = registry_versions.CHUNK,
) -> int:
    """Bulk-load the plots' trees with COPY; returns the number of trees.

    Plots are taken in batches of about `chunk` trees (a plot is never split): each batch
    gets one registry event recording its trees' facts, then one COPY of its rows with
    that event's seq, so no row is written twice.

    rebuild (default: when the trees table is empty, as in a fresh benchmark database):
    lock the table, drop its unique and foreign keys and its secondary indexes (the
    primary key stays), COPY, then re-add them all in the same transaction. Re-adding
    validates every row, so the result is the same as with per-row maintenance, only
    faster; on any error the
    transaction rolls back with the keys in place. Never used on a table with rows,
    where rebuilding would cost more than it saves and block other writers.
    `keep` collects the bytes sent, so a benchmark can COPY the very same rows elsewhere.
    """
    if rebuild is None:
        rebuild = bool(cast(dict[str, Any], conn.execute(SQL["trees_empty"]).fetchone())["empty"])
    restore: list[sql.Composed | sql.SQL] = []
    if rebuild:
        conn.execute(SQL["lock_trees"])
        constraints = conn.execute(SQL["trees_keys"]).fetchall()
        for row in constraints:
            # Composed: table and constraint names are identifiers, never parameters.
            conn.execute(
                sql.SQL("alter table {} drop constraint {}").format(
                    sql.Identifier(row["table_name"]), sql.Identifier(row["name"])
                )
            )
        for row in constraints:
            # The definition is pg_get_constraintdef()'s text for the very key just dropped
            # (catalog output, not input), put back as it was.
            restore.append(
                sql.SQL("alter table {} add constraint {} {}").format(
                    sql.Identifier(row["table_name"]),
                    sql.Identifier(row["name"]),
                    sql.SQL(cast(LiteralString, row["definition"])),
                )
            )
        for row in conn.execute(SQL["trees_plain_indexes"]).fetchall():
            conn.execute(sql.SQL("drop index {}").format(sql.Identifier(row["name"])))
            # pg_get_indexdef()'s text for the index just dropped (catalog output)
            restore.append(sql.SQL(cast(LiteralString, row["definition"])))
    ids = TreeIds()
    n = 0
    events = 0
    started = time.perf_counter()
    plot_list = list(plots)
    batch: list[TreeBatch] = []

    def flush() -> None:
        nonlocal n, events
        records = [r for b in batch for r in b.records]
        if not records:
            return
        event = registry_versions.record_facts(conn, keys, coop_id, "tree", records)
        events += 1
        with conn.cursor().copy(SQL["copy_trees"]) as copy:
            for b in batch:
                data = b.copy_data(event["seq"])
                copy.write(data)
                if keep is not None:
                    keep.append(data)
        for b in batch:
            n += b.count
            if progress is not None:
                progress(b.count)
        batch.clear()

    # rows of the next plots are generated in a second thread while this one waits for
    # the socket
    with ThreadPoolExecutor(1, thread_name_prefix="tree-rows") as pool:
        pending = [
            pool.submit(tree_copy_lines, coop_id, p, plot_ids[p.code], ids) for p in plot_list[:2]
        ]
        for i in range(len(plot_list)):
            done = pending.pop(0).result()
            if i + 2 < len(plot_list):
                nxt = plot_list[i + 2]
                pending.append(pool.submit(tree_copy_lines, coop_id, nxt, plot_ids[nxt.code], ids))
            if batch and sum(b.count for b in batch) + done.count > chunk:
                flush()
            batch.append(done)
        flush()
    copied = time.perf_counter()
    if restore:
        # the index builds sort in memory rather than in temporary files (this transaction only)
        conn.execute(SQL["seed_maintenance_work_mem"])
    for statement in restore:
        t = time.perf_counter()
        conn.execute(statement)
        log.debug(
            "trees_key_restored statement=%r s=%.3f",
            statement.as_string(conn),
            time.perf_counter() - t,
        )
    log.info(
        "trees_copied trees=%d registry_events=%d copy_s=%.3f rebuilt_keys=%d rebuild_s=%.3f",
        n,
        events,
        copied - started,
        len(restore),
        time.perf_counter() - copied,
    )
    return n


def count_store(conn: Conn, device_ids: list[str]) -> dict[str, Any]:
    """What the store holds for these devices (see the `seeded_store_counts` query)."""
    row = conn.execute(SQL["seeded_store_counts"], {"ids": device_ids}).fetchone()
    assert row is not None
    return dict(row)
