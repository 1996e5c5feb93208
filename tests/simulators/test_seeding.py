"""Seeding through the registry, idempotently; the bulk path gives the same trees."""

from __future__ import annotations

import base64

import psycopg

from coffeetrace.simulators.plan import WorldSpec, make_plan
from coffeetrace.simulators.seeding import copy_trees, installed_at, seed_world
from coffeetrace.trace import registry
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.registry_versions import CHUNK, verify_registry

SPEC = WorldSpec(coop_code="seed-test", seed=11, farms=2, harvest_trees_per_plot=5)

TREE_COLUMNS = "tag_code, lon, lat, species, cultivar, planted_on, status"


def trees_of(conn: psycopg.Connection, coop_id: object) -> list[tuple]:
    rows = conn.execute(
        f"select {TREE_COLUMNS}, p.code as plot from trees t"
        " join plots p on p.id = t.plot_id where t.cooperative_id = %s"
        " order by tag_code",
        (coop_id,),
    ).fetchall()
    return [tuple(r.values()) for r in rows]


def constraints(conn: psycopg.Connection) -> list[tuple]:
    rows = conn.execute(
        "select conname, pg_get_constraintdef(oid) as d from pg_constraint"
        " where conrelid = 'trees'::regclass or confrelid = 'trees'::regclass order by 1"
    ).fetchall()
    indexes = conn.execute(
        "select indexname, indexdef from pg_indexes where tablename = 'trees' order by 1"
    ).fetchall()
    return [tuple(r.values()) for r in rows + indexes]


def test_seed_world_registers_everything_once(conn: psycopg.Connection, keys: KeyRing) -> None:
    plan = make_plan(SPEC)
    world = seed_world(conn, plan, keys=keys)
    assert world.created and world.trees == plan.tree_count
    counts = conn.execute(
        "select (select count(*) from farms) as farms, (select count(*) from plots) as plots,"
        " (select count(*) from trees) as trees, (select count(*) from devices) as devices,"
        " (select count(*) from products where gtin is not null) as products,"
        " (select count(*) from farm_private where owner_name is not null) as private"
    ).fetchone()
    assert counts == {
        "farms": 2,
        "plots": len(plan.plots),
        "trees": plan.tree_count,
        "devices": len(plan.devices),
        "products": 2,
        "private": 2,
    }
    # consented display names only
    for row in conn.execute("select code, display_name, display_name_consent from farms"):
        assert (row["display_name"] is not None) == row["display_name_consent"]
    devices = conn.execute("select id, kind, plot_id, registered_at from devices").fetchall()
    assert all(d["registered_at"] <= installed_at(plan) for d in devices)
    assert all((d["plot_id"] is None) == (d["kind"] in ("harvest_scale", "phone")) for d in devices)
    assert set(world.credentials) == {d.id for d in plan.devices}

    again = seed_world(conn, plan, keys=keys)
    assert not again.created
    assert again.cooperative_id == world.cooperative_id
    assert again.plot_ids == world.plot_ids and again.trees == world.trees
    assert again.credentials.keys() == world.credentials.keys()
    assert all(again.credentials[k] != world.credentials[k] for k in world.credentials)
    assert conn.execute("select count(*) as n from trees").fetchone()["n"] == plan.tree_count
    assert conn.execute("select count(*) as n from cooperatives").fetchone()["n"] == 1


def test_bulk_path_gives_the_registry_path_trees(conn: psycopg.Connection, keys: KeyRing) -> None:
    before = constraints(conn)
    bulk = seed_world(conn, make_plan(SPEC), keys=keys, bulk=True)  # empty table: keys rebuilt
    assert constraints(conn) == before
    by_registry = seed_world(
        conn,
        make_plan(WorldSpec(**{**SPEC.__dict__, "coop_code": "seed-test-2"})),
        keys=keys,
        bulk=False,
    )
    assert trees_of(conn, bulk.cooperative_id) == trees_of(conn, by_registry.cooperative_id)
    # both ways, every registry row has its version: the bulk path's batch events hold the
    # facts of exactly the rows it COPYed
    for world in (bulk, by_registry):
        rows = {
            entity: [r["id"] for r in conn.execute(q, (world.cooperative_id,)).fetchall()]
            for entity, q in (
                ("tree", "select id from trees where cooperative_id = %s"),
                ("plot", "select id from plots where cooperative_id = %s"),
                ("farm", "select id from farms where cooperative_id = %s"),
                ("product", "select id from products where cooperative_id = %s"),
            )
        }
        assert (
            verify_registry(
                conn,
                tree_ids=rows["tree"],
                plot_ids=rows["plot"],
                farm_ids=rows["farm"],
                product_ids=rows["product"],
            )
            == []
        )
    tree_events = conn.execute(
        "select count(distinct event_seq) as n from trees where cooperative_id = %s",
        (bulk.cooperative_id,),
    ).fetchone()
    assert tree_events["n"] <= -(-len(trees_of(conn, bulk.cooperative_id)) // CHUNK) + 1
    ids = conn.execute("select public_id from trees").fetchall()
    assert len({r["public_id"] for r in ids}) == len(ids)
    assert all(len(r["public_id"]) == 26 for r in ids)
    # canonical base32 of 128 random bits, like credentials.new_public_id
    assert all(len(base64.b32decode(r["public_id"].upper() + "======")) == 16 for r in ids)


def test_bulk_load_into_a_table_with_rows_keeps_keys_and_refuses_duplicates(
    conn: psycopg.Connection,
    keys: KeyRing,
) -> None:
    plan = make_plan(SPEC)
    world = seed_world(conn, plan, keys=keys, bulk=True)
    before = constraints(conn)
    other = registry.create_cooperative(conn, "seed-other", "Other")
    farm = registry.create_farm(conn, other["id"], "FM-X", keys=keys)
    plot = plan.plots[0]
    pid = registry.create_plot(
        conn, other["id"], farm["id"], plot.code, plot.geometry, plot.area_ha, keys=keys
    )["id"]
    n = copy_trees(
        conn, other["id"], [plot], {plot.code: pid}, keys=keys
    )  # table has rows: no rebuild
    assert n == plot.tree_count and constraints(conn) == before
    conn.commit()
    try:
        copy_trees(
            conn, world.cooperative_id, [plot], {plot.code: world.plot_ids[plot.code]}, keys=keys
        )
    except psycopg.errors.UniqueViolation:
        conn.rollback()
    else:
        raise AssertionError("the same tags twice in one cooperative were accepted")


def test_known_passwords_survive_a_second_seeding(conn: psycopg.Connection, keys: KeyRing) -> None:
    """A broker password file written after the first run stays valid after the second."""
    from coffeetrace.credentials import verify_mosquitto_hash

    plan = make_plan(SPEC)
    first = seed_world(conn, plan, keys=keys)
    kept_id, rotated_id = sorted(first.credentials)[:2]
    again = seed_world(
        conn,
        plan,
        keys=keys,
        known_passwords={kept_id: first.credentials[kept_id], rotated_id: "a-wrong-password"},
    )
    assert again.credentials[kept_id] == first.credentials[kept_id]
    assert again.credentials[rotated_id] != first.credentials[rotated_id]
    hashes = {
        r["id"]: r["credential_hash"]
        for r in conn.execute("select id, credential_hash from devices").fetchall()
    }
    assert all(verify_mosquitto_hash(pw, hashes[d]) for d, pw in again.credentials.items())
