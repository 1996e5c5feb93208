"""Registry versions against psql: every registry fact that pages and exports state is held
by a signed chain event, and an edit made with plain SQL (no signing key, so no new event)
is named by `verify_registry`, row and field."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from coffeetrace.api.app import create_app
from coffeetrace.api.auth import create_api_key
from coffeetrace.settings import Settings
from coffeetrace.trace import chain, registry, registry_versions
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.registry_versions import verify_registry
from tests.factories import World, make_world, square
from tests.trace.builders import T0


def _world(conn: psycopg.Connection, keys: KeyRing) -> tuple[World, dict[str, Any]]:
    world = make_world(conn, keys=keys, trees=3)
    product = registry.create_product(
        conn, world.coop["id"], "Robusta green", keys=keys, gtin="08930000000019"
    )
    return world, product


def _verify(world: World, product: dict[str, Any], conn: psycopg.Connection) -> list[dict]:
    asked: dict[str, Any] = dict(
        plot_ids=[world.plot["id"]],
        tree_ids=[t["id"] for t in world.trees],
        farm_ids=[world.farm["id"]],
        product_ids=[product["id"]],
    )
    problems = verify_registry(conn, **asked)
    # given the events read already (as verify_lot gives them), the same problems
    events = {
        r["seq"]: r
        for r in conn.execute("select seq, kind, cooperative_id, payload from trace_events")
    }
    assert verify_registry(conn, **asked, events=events) == problems
    return problems


def _only(problems: list[dict], entity: str, row_id: Any) -> dict:
    assert len(problems) == 1, problems
    p = problems[0]
    assert p["record"] == {"type": entity, "id": str(row_id)}
    return p


def test_a_fresh_world_verifies_clean(conn: psycopg.Connection, keys: KeyRing) -> None:
    world, product = _world(conn, keys)
    assert _verify(world, product, conn) == []
    # every row names a registry event of its cooperative that records it
    seqs = {world.plot["event_seq"], world.farm["event_seq"], product["event_seq"]}
    seqs |= {t["event_seq"] for t in world.trees}
    assert None not in seqs
    events = conn.execute(
        "select seq, kind, cooperative_id, payload, signature from trace_events"
        " where seq = any(%s)",
        (list(seqs),),
    ).fetchall()
    assert {e["kind"] for e in events} == {"registry"}
    # the events verification checks for hash, links and signature
    assert (
        set(
            registry_versions.version_seqs(
                conn,
                plot_ids=[world.plot["id"]],
                tree_ids=[t["id"] for t in world.trees],
                farm_ids=[world.farm["id"]],
                product_ids=[product["id"]],
            )
        )
        == seqs
    )
    assert {e["cooperative_id"] for e in events} == {world.coop["id"]}
    assert all(e["signature"] for e in events)
    # the three trees share one event; the owner's name is pinned, never stated
    assert len({t["event_seq"] for t in world.trees}) == 1
    farm_event = next(e for e in events if e["seq"] == world.farm["event_seq"])
    facts = farm_event["payload"]["records"][0]["facts"]
    assert "Nguyễn" not in str(farm_event["payload"])
    assert facts["owner_name_sha256"] == registry_versions.owner_name_sha256(
        world.farm["id"], "Nguyễn Văn A"
    )
    assert facts["data_consent"] is True


@pytest.mark.parametrize(
    "edit, entity, field, words",
    [
        (
            # the whole polygon moved 0.45 degrees of latitude north (about 50 km)
            "update plots set geometry = jsonb_build_object('type', 'Polygon', 'coordinates',"
            " (select jsonb_agg((select jsonb_agg(jsonb_build_array((pos->>0)::float8,"
            " (pos->>1)::float8 + 0.45)) from jsonb_array_elements(ring) pos))"
            " from jsonb_array_elements(geometry->'coordinates') ring))"
            " where id = %(plot)s",
            "plot",
            "geometry",
            ["geometry changed", "centroid moved 50."],
        ),
        (
            "update plots set centroid_lat = centroid_lat + 0.45 where id = %(plot)s",
            "plot",
            "centroid_lat",
            ["centroid_lat"],
        ),
        (
            "update plots set area_ha = 3.5 where id = %(plot)s",
            "plot",
            "area_ha",
            ['area_ha "1.0000" became "3.5000"'],
        ),
        (
            "update trees set lon = lon + 0.01, lat = lat + 0.01 where id = %(tree)s",
            "tree",
            "lon",
            ["lat", "the tree moved 1.5"],
        ),
        (
            "update trees set planted_on = '2001-01-01' where id = %(tree)s",
            "tree",
            "planted_on",
            ['planted_on "2012-06-01" became "2001-01-01"'],
        ),
        (
            "update trees set plot_id = %(plot2)s where id = %(tree)s",
            "tree",
            "plot_id",
            ["plot_id"],
        ),
        (
            "update farms set display_name_consent = false where id = %(farm)s",
            "farm",
            "display_name_consent",
            ["display_name_consent true became false"],
        ),
        (
            "update farm_private set data_consent = false where farm_id = %(farm)s",
            "farm",
            "data_consent",
            ["data_consent true became false"],
        ),
        (
            "update farm_private set owner_name = 'Someone Else' where farm_id = %(farm)s",
            "farm",
            "owner_name_sha256",
            ["owner_name_sha256"],
        ),
        (
            "update products set gtin = '08930000000026' where id = %(product)s",
            "product",
            "gtin",
            ['gtin "08930000000019" became "08930000000026"'],
        ),
    ],
)
def test_a_psql_edit_is_named_by_row_and_field(
    conn: psycopg.Connection,
    keys: KeyRing,
    edit: str,
    entity: str,
    field: str,
    words: list[str],
) -> None:
    world, product = _world(conn, keys)
    plot2 = registry.create_plot(
        conn, world.coop["id"], world.farm["id"], "P-2", square(108.2, 12.7), 1.0, keys=keys
    )
    ids = {
        "plot": world.plot["id"],
        "tree": world.trees[1]["id"],
        "farm": world.farm["id"],
        "product": product["id"],
        "plot2": plot2["id"],
    }
    conn.execute(edit, ids)  # as psql would: no key, no event
    p = _only(_verify(world, product, conn), entity, ids[entity])
    assert p["problem"] == "row_mismatch"
    assert p["kind"] == "registry"
    assert p["seq"] is not None
    assert field in p["fields"]
    assert field in p["detail"]
    for w in words:
        assert w in p["detail"], p["detail"]
    label = {"plot": "P-1", "tree": "T-00001", "farm": world.farm["code"], "product": "Robusta"}
    assert f"{entity} {label[entity]}" in p["detail"]
    assert str(ids[entity]) in p["detail"]


def test_geometry_moved_50_km_says_how_far(conn: psycopg.Connection, keys: KeyRing) -> None:
    world, product = _world(conn, keys)
    moved = square(108.05, 12.68 + 0.45)  # about 50 km north
    conn.execute(
        "update plots set geometry = %s::jsonb where id = %s",
        (Jsonb(moved), world.plot["id"]),
    )
    p = _only(_verify(world, product, conn), "plot", world.plot["id"])
    assert p["fields"] == ["geometry"]
    assert "its centroid moved 50.0 km" in p["detail"]


def test_a_row_without_a_version_is_a_missing_event(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    world, product = _world(conn, keys)
    conn.execute("update trees set event_seq = null where id = %s", (world.trees[0]["id"],))
    p = _only(_verify(world, product, conn), "tree", world.trees[0]["id"])
    assert p["problem"] == "missing_event"
    assert (p["seq"], p["kind"]) == (None, None)
    assert "event_seq is empty" in p["detail"]
    assert "T-00000" in p["detail"]


def test_a_version_pointing_elsewhere_is_named(conn: psycopg.Connection, keys: KeyRing) -> None:
    world, product = _world(conn, keys)
    other = make_world(conn, keys=keys, trees=1, lon=108.3)
    tree = world.trees[0]

    def one_problem(seq: Any) -> dict:
        with conn.transaction(force_rollback=True):
            conn.execute("update trees set event_seq = %s where id = %s", (seq, tree["id"]))
            return _only(_verify(world, product, conn), "tree", tree["id"])

    # an event that does not exist
    p = one_problem(10**9)
    assert p["problem"] == "missing_event"
    assert "no such event" in p["detail"]
    # the plot's registry event: a registry event, but not of this tree
    p = one_problem(world.plot["event_seq"])
    assert (p["problem"], p["seq"], p["kind"]) == (
        "row_mismatch",
        world.plot["event_seq"],
        "registry",
    )
    assert "does not record this tree" in p["detail"]
    # another cooperative's registry event
    p = one_problem(other.trees[0]["event_seq"])
    assert p["problem"] == "row_mismatch"
    assert "another cooperative" in p["detail"]
    # an event of another kind (a lot's) is not a registry event
    lot_event = chain.append_event(
        conn, world.coop["id"], "lot_created", [], T0, {"lot": {"code": "X"}}, keys=keys
    )
    p = one_problem(lot_event["seq"])
    assert (p["problem"], p["kind"]) == ("row_mismatch", "lot_created")
    assert "not a registry event" in p["detail"]
    assert _verify(world, product, conn) == []


def test_a_legitimate_change_is_a_new_version(conn: psycopg.Connection, keys: KeyRing) -> None:
    world, product = _world(conn, keys)
    farm_id = world.farm["id"]
    before = world.farm["event_seq"]
    registry.set_farm_private(
        conn, farm_id, keys=keys, owner_name="Nguyễn Văn A", data_consent=False
    )
    seq = conn.execute("select event_seq from farms where id = %s", (farm_id,)).fetchone()
    assert seq["event_seq"] > before  # type: ignore[index]
    assert _verify(world, product, conn) == []
    event = conn.execute(
        "select kind, payload from trace_events where seq = %s",
        (seq["event_seq"],),  # type: ignore[index]
    ).fetchone()
    assert event["kind"] == "registry"  # type: ignore[index]
    assert event["payload"]["records"][0]["facts"]["data_consent"] is False  # type: ignore[index]
    # a psql edit back to consent is named against the new version
    conn.execute("update farm_private set data_consent = true where farm_id = %s", (farm_id,))
    p = _only(_verify(world, product, conn), "farm", farm_id)
    assert p["seq"] == seq["event_seq"]  # type: ignore[index]
    assert "data_consent false became true" in p["detail"]


def test_many_rows_take_one_event_per_chunk(conn: psycopg.Connection, keys: KeyRing) -> None:
    world = make_world(conn, keys=keys, trees=0)
    trees = [
        registry._insert_tree(conn, world.coop["id"], world.plot["id"], f"B-{i}", lon=108.05)
        for i in range(7)
    ]
    ids = [t["id"] for t in trees]
    assert len(verify_registry(conn, tree_ids=ids)) == 7  # no versions yet
    events = registry_versions.record_versions_chunked(
        conn, keys, world.coop["id"], "tree", ids, chunk=3
    )
    assert [len(e["payload"]["records"]) for e in events] == [3, 3, 1]
    assert verify_registry(conn, tree_ids=ids) == []
    # rows loaded with SQL get theirs from record_missing_versions
    conn.execute("update trees set event_seq = null where id = any(%s)", (ids[:2],))
    done = registry_versions.record_missing_versions(conn, keys, world.coop["id"])
    assert done == {"plot": 0, "tree": 2, "farm": 0, "product": 0}
    assert verify_registry(conn, tree_ids=ids, plot_ids=[world.plot["id"]]) == []


def test_registry_api_writes_versions(
    settings: Settings, conn: psycopg.Connection, keys: KeyRing
) -> None:
    """Through the API (its keys are the `keys` fixture's): a farm created, then its
    personal data replaced; each write is a new version."""
    world, product = _world(conn, keys)
    token = create_api_key(conn, world.coop["id"], "admin", "t").token
    conn.commit()
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        farm = client.post("/v1/farms", json={"code": "F-API"}, headers=auth)
        assert farm.status_code == 201, farm.text
        farm_id = farm.json()["id"]
        first = conn.execute("select event_seq from farms where id = %s", (farm_id,)).fetchone()
        conn.rollback()
        r = client.put(
            f"/v1/farms/{farm_id}/private",
            json={"owner_name": "Trần Thị B", "data_consent": True},
            headers=auth,
        )
        assert r.status_code == 204, r.text
    row = conn.execute(
        "select f.event_seq, e.payload, e.signature from farms f"
        " join trace_events e on e.seq = f.event_seq where f.id = %s",
        (farm_id,),
    ).fetchone()
    assert row is not None and first is not None
    assert row["event_seq"] > first["event_seq"]
    assert row["payload"]["records"][0]["facts"]["data_consent"] is True
    assert row["signature"]["key_id"] in {k["key_id"] for k in keys.public_keys(world.coop["id"])}
    assert verify_registry(conn, farm_ids=[farm_id]) == []
