"""The attack list of "Evidence that holds": each edit made behind the application's back
(plain SQL, as psql would, without the signing keys) makes verification fail and name the
record or the missing seq; the untouched chain verifies. Reading values are named by the
chain audit of ingest batches (tests/ingest/test_batch_evidence.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from coffeetrace.trace import chain, checkpoints, provenance, registry_versions, verification
from coffeetrace.trace.keys import KeyRing
from tests.trace.chain import build_chain

Attack = Callable[[psycopg.Connection, dict[str, Any]], None]


@pytest.fixture
def built(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    out = build_chain(conn, keys=keys)
    conn.commit()
    for coop_id in checkpoints.cooperatives_with_chains(conn):
        checkpoints.observe(conn, keys, coop_id)  # as the API does once a write committed
    return out


def _verify(conn: psycopg.Connection, keys: KeyRing, lot: dict[str, Any], **kw: Any) -> Any:
    return verification.verify_lot(conn, lot["id"], keys=keys, **kw)


def _named(report: dict[str, Any], record_type: str, record_id: Any) -> list[dict[str, Any]]:
    return [
        p
        for p in report["problems"]
        if p.get("record") == {"type": record_type, "id": str(record_id)}
    ]


def _one(conn: psycopg.Connection, sql: str, params: dict[str, Any] | None = None) -> Any:
    row = conn.execute(sql, params or {}).fetchone()
    assert row is not None
    return row


def _first_harvest(conn: psycopg.Connection, built: dict[str, Any]) -> Any:
    return _one(
        conn,
        "select harvest_id from lot_harvests where lot_id = %(l)s order by harvest_id limit 1",
        {"l": built["lots"][0]["id"]},
    )["harvest_id"]


def test_untouched_chain_verifies(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    report = _verify(conn, keys, built["packed"])
    assert report["ok"], report["problems"]
    assert report["checkpoint"] is not None
    assert report["checkpoint"]["tree_size"] >= report["checked_events"]
    whole = verification.verify_chain(conn, built["world"].coop["id"], keys=keys)
    assert whole["ok"], whole["problems"]


def test_chain_head_is_the_cooperatives_and_lot_head_the_lots(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    first = built["lots"][0]  # an upstream lot: later events of the chain are not its own
    report = _verify(conn, keys, first)
    newest = _one(
        conn,
        "select max(seq) as seq from trace_events where cooperative_id = %(c)s",
        {"c": built["world"].coop["id"]},
    )["seq"]
    own = _one(
        conn,
        "select max(seq) as seq from trace_events where %(l)s = any(lot_ids)",
        {"l": first["id"]},
    )["seq"]
    assert report["chain_head"]["seq"] == newest
    assert report["lot_head"]["seq"] == own < newest
    doc = provenance.document(conn, first["id"])
    assert doc["chain"]["head_seq"] == report["lot_head"]["seq"]  # what its page shows


# --- rows a page or an export states -------------------------------------------------
ROW_ATTACKS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Any]]] = {
    # name: (SQL with %(id)s, record type, id of the record in `built`)
    "plot_geometry": (
        "update plots set geometry = jsonb_set(geometry, '{coordinates,0,0,1}',"
        " to_jsonb((geometry #>> '{coordinates,0,0,1}')::float8 + 0.45)) where id = %(id)s",
        "plot",
        lambda b: b["world"].plot["id"],
    ),
    "plot_area": (
        "update plots set area_ha = area_ha * 2 where id = %(id)s",
        "plot",
        lambda b: b["world"].plot["id"],
    ),
    "tree_location": (
        "update trees set lon = lon + 0.5 where id = %(id)s",
        "tree",
        lambda b: b["world"].trees[0]["id"],
    ),
    # NaN is a float8 value JSON cannot hold: named as a difference, not a crash
    "tree_location_nan": (
        "update trees set lat = 'NaN' where id = %(id)s",
        "tree",
        lambda b: b["world"].trees[0]["id"],
    ),
    "farm_consent": (
        "update farms set display_name_consent = not display_name_consent where id = %(id)s",
        "farm",
        lambda b: b["world"].farm["id"],
    ),
    "farm_private_consent": (
        "update farm_private set data_consent = not data_consent where farm_id = %(id)s",
        "farm",
        lambda b: b["world"].farm["id"],
    ),
    "product_gtin": (
        "update products set gtin = '08930000000040' where id = %(id)s",
        "product",
        lambda b: b["packed"]["product_id"],
    ),
}


@pytest.mark.parametrize("attack", sorted(ROW_ATTACKS))
def test_registry_edit_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any], attack: str
) -> None:
    sql, record_type, record_id = ROW_ATTACKS[attack]
    rid = record_id(built)
    assert conn.execute(sql, {"id": rid}).rowcount == 1
    report = _verify(conn, keys, built["packed"])
    assert not report["ok"]
    assert _named(report, record_type, rid), report["problems"]


@pytest.mark.parametrize(
    ("attack", "sql"),
    [
        ("harvest_kg", "update harvest_events set cherry_kg = cherry_kg * 2 where id = %(h)s"),
        ("harvest_tree", "update harvest_events set tree_id = %(tree4)s where id = %(h)s"),
        (
            "harvest_time",
            "update harvest_events set time = time - interval '1 day' where id = %(h)s",
        ),
        (
            "lot_harvests_tree",
            "update lot_harvests set tree_id = %(tree4)s where harvest_id = %(h)s",
        ),
        ("lot_harvests_kg", "update lot_harvests set kg = kg + 1 where harvest_id = %(h)s"),
    ],
)
def test_harvest_edit_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any], attack: str, sql: str
) -> None:
    h = _first_harvest(conn, built)
    if attack == "harvest_time":  # lot_harvests keeps the time it joined on: move both
        conn.execute(
            "update lot_harvests set harvest_time = harvest_time - interval '1 day'"
            " where harvest_id = %(h)s",
            {"h": h},
        )
    assert conn.execute(sql, {"h": h, "tree4": built["tree4"]["id"]}).rowcount == 1
    report = _verify(conn, keys, built["packed"])
    assert not report["ok"]
    assert _named(report, "harvest", h), report["problems"]


def test_transformation_measurement_edit_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    t = _one(
        conn,
        "select id, event_seq from transformations where measurements ? 'moisture_pct'"
        " order by occurred_at limit 1",
    )
    conn.execute(
        "update transformations set measurements = jsonb_set(measurements, '{moisture_pct}',"
        " '9.0') where id = %(id)s",
        {"id": t["id"]},
    )
    report = _verify(conn, keys, built["packed"])
    assert not report["ok"]
    named = [p for p in report["problems"] if p["seq"] == t["event_seq"]]
    assert any("measurements" in p["detail"] for p in named), report["problems"]


# --- the chain itself ------------------------------------------------------------------
def _events(conn: psycopg.Connection, coop: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "select * from trace_events where cooperative_id = %(c)s order by seq", {"c": coop}
    ).fetchall()


def _rehash_from(conn: psycopg.Connection, coop: Any, first_seq: int) -> None:
    """Recompute the hashes of every event from first_seq on with the documented rule,
    as an attacker who read docs/trace.md would (and rebuild the Merkle nodes too)."""
    prev = chain.GENESIS
    for ev in _events(conn, coop):
        if ev["seq"] >= first_seq:
            digest = chain.event_hash(
                seq=ev["seq"],
                cooperative_id=ev["cooperative_id"],
                kind=ev["kind"],
                lot_ids=ev["lot_ids"],
                occurred_at=ev["occurred_at"],
                payload=ev["payload"],
                prev_hash=prev,
            )
            conn.execute(
                "update trace_events set prev_hash = %(p)s, hash = %(h)s where seq = %(s)s",
                {"p": prev, "h": digest, "s": ev["seq"]},
            )
            prev = digest
        else:
            prev = ev["hash"]
    conn.execute("delete from chain_nodes where cooperative_id = %(c)s", {"c": coop})


def test_event_payload_edit_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    ev = _one(
        conn,
        "select seq from trace_events where lot_ids @> array[%(l)s]::uuid[] order by seq limit 1",
        {"l": built["lots"][0]["id"]},
    )
    seq = ev["seq"]
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{lot,code}', '\"FORGED\"')"
        " where seq = %(s)s",
        {"s": seq},
    )
    report = _verify(conn, keys, built["packed"])
    assert {"hash_mismatch"} <= {p["problem"] for p in report["problems"] if p["seq"] == seq}


def test_suffix_rehash_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    first = _events(conn, coop)[0]
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{forged}', 'true')"
        " where seq = %(s)s",
        {"s": first["seq"]},
    )
    _rehash_from(conn, coop, first["seq"])
    report = _verify(conn, keys, built["packed"])
    assert not report["ok"]
    bad = {p["seq"] for p in report["problems"] if p["problem"] == "signature_invalid"}
    assert first["seq"] in {p["seq"] for p in report["problems"]} or bad, report["problems"]
    whole = verification.verify_chain(conn, coop, keys=keys)
    assert first["seq"] in {
        p["seq"] for p in whole["problems"] if p["problem"] == "signature_invalid"
    }
    assert any(p["problem"] == "not_in_checkpoint" for p in whole["problems"])


def test_reordering_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    a, b = _events(conn, coop)[-3:-1]
    # swap the two events' content, keep seq and position: the order of history changes
    for target, source in ((a, b), (b, a)):
        conn.execute(
            "update trace_events set kind = %(k)s, lot_ids = %(l)s, occurred_at = %(o)s,"
            " payload = %(p)s where seq = %(s)s",
            {
                "k": source["kind"],
                "l": source["lot_ids"],
                "o": source["occurred_at"],
                "p": json.dumps(source["payload"]),
                "s": target["seq"],
            },
        )
    _rehash_from(conn, coop, a["seq"])
    whole = verification.verify_chain(conn, coop, keys=keys)
    assert {a["seq"], b["seq"]} <= {
        p["seq"] for p in whole["problems"] if p["problem"] == "signature_invalid"
    }


def test_truncation_is_named_with_the_missing_seq(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    newest = _events(conn, coop)[-1]
    conn.execute("delete from trace_events where seq = %(s)s", {"s": newest["seq"]})
    # and the stored checkpoints that held it: only the witness remembers
    conn.execute(
        "delete from chain_checkpoints where cooperative_id = %(c)s and tree_size > %(n)s",
        {"c": coop, "n": newest["position"]},
    )
    report = verification.verify_chain(conn, coop, keys=keys)
    cut = [p for p in report["problems"] if p["problem"] == "chain_truncated"]
    assert cut and cut[0]["seq"] == newest["seq"], report["problems"]


def test_deleting_the_newest_event_with_its_lot_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    packed = built["packed"]
    newest = _events(conn, coop)[-1]
    assert packed["id"] in newest["lot_ids"]
    t = packed["produced_by"]
    conn.execute("delete from lot_statements where lot_id = %(l)s", {"l": packed["id"]})
    conn.execute("delete from transformation_outputs where transformation_id = %(t)s", {"t": t})
    conn.execute("delete from transformation_inputs where transformation_id = %(t)s", {"t": t})
    conn.execute("delete from lots where id = %(l)s", {"l": packed["id"]})
    conn.execute("delete from transformations where id = %(t)s", {"t": t})
    conn.execute("delete from trace_events where seq = %(s)s", {"s": newest["seq"]})
    conn.execute(
        "delete from chain_checkpoints where cooperative_id = %(c)s and tree_size > %(n)s",
        {"c": coop, "n": newest["position"]},
    )
    # the lot that fed the packing is still there, and its own history looks whole
    fed = built["grade_b"]
    report = _verify(conn, keys, fed)
    cut = [p for p in report["problems"] if p["problem"] == "chain_truncated"]
    assert cut and cut[0]["seq"] == newest["seq"], report["problems"]


def test_a_kept_checkpoint_proves_a_rewrite_after_everything_else_is_gone(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    kept = checkpoints.latest(conn, coop)
    assert kept is not None
    kept = {"body": kept["body"], "signature": kept["signature"]}
    first = _events(conn, coop)[0]
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{forged}', 'true')"
        " where seq = %(s)s",
        {"s": first["seq"]},
    )
    _rehash_from(conn, coop, first["seq"])
    conn.execute("delete from chain_checkpoints where cooperative_id = %(c)s", {"c": coop})
    (keys.root / str(coop) / "witness.json").unlink(missing_ok=True)
    report = verification.verify_chain(conn, coop, keys=keys, kept=kept)
    assert any(
        p["problem"] == "not_in_checkpoint" and "kept" in p["detail"] for p in report["problems"]
    ), report["problems"]


def test_a_forged_checkpoint_is_refused(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    stored = checkpoints.latest(conn, coop)
    assert stored is not None
    forged = {"body": {**stored["body"], "tree_size": 10_000}, "signature": stored["signature"]}
    report = _verify(conn, keys, built["packed"], kept=forged)
    assert "checkpoint_invalid" in {p["problem"] for p in report["problems"]}


def test_an_event_appended_with_psql_is_unsigned(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    head = _events(conn, coop)[-1]
    payload = {"forged": True}
    seq = _one(conn, "select nextval(pg_get_serial_sequence('trace_events', 'seq')) as s")["s"]
    digest = chain.event_hash(
        seq=seq,
        cooperative_id=coop,
        kind="lot_created",
        lot_ids=[built["packed"]["id"]],
        occurred_at=head["occurred_at"],
        payload=payload,
        prev_hash=head["hash"],
    )
    conn.execute(
        "insert into trace_events (seq, cooperative_id, kind, lot_ids, occurred_at, payload,"
        " prev_hash, hash, position) overriding system value values (%(s)s, %(c)s,"
        " 'lot_created', %(l)s, %(o)s, %(p)s, %(prev)s, %(h)s, %(pos)s)",
        {
            "s": seq,
            "c": coop,
            "l": [built["packed"]["id"]],
            "o": head["occurred_at"],
            "p": json.dumps(payload),
            "prev": head["hash"],
            "h": digest,
            "pos": head["position"] + 1,
        },
    )
    report = _verify(conn, keys, built["packed"])
    assert seq in {p["seq"] for p in report["problems"] if p["problem"] == "unsigned_event"}


def test_a_lot_cannot_take_edited_harvest_kilograms(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    from coffeetrace.errors import RuleViolation
    from coffeetrace.trace import lots
    from tests.trace.builders import insert_harvest

    tree = built["world"].trees[0]
    h = insert_harvest(conn, tree, 5)
    conn.execute("update harvest_events set cherry_kg = 50 where id = %(h)s", {"h": h})
    with pytest.raises(RuleViolation) as exc:
        lots.build_cherry_lot(
            conn, built["world"].coop["id"], code="CH-X", harvest_ids=[h], keys=keys
        )
    assert exc.value.rule == "harvest_unverified"
    assert str(h) in exc.value.details["harvest_ids"]


def test_other_cooperatives_key_cannot_sign_this_history(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any], tmp_path: Any
) -> None:
    """Events re-signed with another cooperative's key are refused."""
    coop = built["world"].coop["id"]
    other = KeyRing(tmp_path / "other-keys")
    ev = _events(conn, coop)[0]
    stranger = other.sign(coop, chain.EVENT_DOMAIN, ev["hash"].encode())
    conn.execute(
        "update trace_events set signature = %(g)s where seq = %(s)s",
        {"g": json.dumps(stranger), "s": ev["seq"]},
    )
    whole = verification.verify_chain(conn, coop, keys=keys)
    assert ev["seq"] in {p["seq"] for p in whole["problems"] if p["problem"] == "signature_invalid"}


def test_a_row_put_back_to_an_older_version_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    tree = built["world"].trees[0]
    before = _one(conn, "select lon, event_seq from trees where id = %(id)s", {"id": tree["id"]})
    # a registry change made as the application makes one: the row, then its new version
    conn.execute("update trees set lon = lon + 0.01 where id = %(id)s", {"id": tree["id"]})
    registry_versions.record_versions(conn, keys, built["world"].coop["id"], "tree", [tree["id"]])
    assert _verify(conn, keys, built["packed"])["ok"]
    # then, behind the application's back, the old facts with the old version's seq
    conn.execute(
        "update trees set lon = %(lon)s, event_seq = %(seq)s where id = %(id)s",
        {"lon": before["lon"], "seq": before["event_seq"], "id": tree["id"]},
    )
    report = _verify(conn, keys, built["packed"])
    assert not report["ok"]
    named = _named(report, "tree", tree["id"])
    assert named and "put back to an older version" in named[0]["detail"], report["problems"]
    assert named[0]["seq"] > before["event_seq"]  # the newer version that shows it


def test_hiding_a_newer_version_from_the_index_is_named_by_the_chain_audit(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    coop = built["world"].coop["id"]
    assert verification.verify_chain(conn, coop, keys=keys)["ok"]
    tree = built["world"].trees[0]
    seq = _one(conn, "select event_seq from trees where id = %(id)s", {"id": tree["id"]})
    conn.execute(
        "delete from registry_record_versions where record_id = %(id)s and seq = %(seq)s",
        {"id": str(tree["id"]), "seq": seq["event_seq"]},
    )
    report = verification.verify_chain(conn, coop, keys=keys)
    assert not report["ok"]
    hit = [p for p in report["problems"] if p["seq"] == seq["event_seq"]]
    assert hit and "registry_record_versions" in hit[0]["detail"], report["problems"]


def test_editing_a_row_and_its_registry_event_together_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any]
) -> None:
    farm = built["world"].farm
    seq = _one(conn, "select event_seq from farms where id = %(f)s", {"f": farm["id"]})["event_seq"]
    conn.execute(
        "update farm_private set data_consent = false where farm_id = %(f)s", {"f": farm["id"]}
    )
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{records,0,facts,data_consent}',"
        " 'false') where seq = %(s)s",
        {"s": seq},
    )
    report = _verify(conn, keys, built["packed"])
    assert not report["ok"]
    assert "hash_mismatch" in {p["problem"] for p in report["problems"] if p["seq"] == seq}


@pytest.mark.parametrize(
    "kept",
    [
        {"body": {"type": "coffeetrace.checkpoint", "tree_size": "x\u0000", "cooperative_id": []}},
        {"body": {"type": "coffeetrace.checkpoint", "cooperative_id": "\ud800"}, "signature": 5},
        {"body": {"type": "other"}, "signature": {"algorithm": "Ed25519", "value": "!!"}},
        {"body": [], "signature": None},
        {"body": {"type": "coffeetrace.checkpoint", "nested": [[[[[[[[[[[]]]]]]]]]]]}},
    ],
)
def test_a_hostile_kept_checkpoint_is_refused_not_crashed_on(
    conn: psycopg.Connection, keys: KeyRing, built: dict[str, Any], kept: Any
) -> None:
    report = _verify(conn, keys, built["packed"], kept=kept)
    assert [p["problem"] for p in report["problems"]] == ["checkpoint_invalid"]
