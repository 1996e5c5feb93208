"""Registry versions: the registry facts that pages and exports state, held by the chain.

Every write of a plot, tree, farm (farm_private included) or product appends a chain
event of kind "registry" (`record_versions`, in the writer's transaction) whose payload
records the row's facts as they now are, {"entity", "records": [{"id", "facts"}]}, and
sets the row's `event_seq` to it: the version in force. A change is allowed, but it is
itself a new signed event. One event may hold many rows (bulk seeding writes one per
`CHUNK` rows).

`verify_registry` compares rows with the facts their event recorded, so that an edit made
with psql (which cannot sign a new event) is named, field by field. It checks rows
against events; the events' hashes and signatures are verification.py's.

Not detected here: a row put back, with psql, to an older version of itself together
with that version's event_seq (the facts then match an event that was later superseded).
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, LiteralString
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import page_snapshots
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event
from coffeetrace.trace.geometry import distance_m, geometry_centroid
from coffeetrace.trace.jsonutil import canonical_json_str_keys, jsonable
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "registry_versions.sql")
log = logging.getLogger(__name__)

Entity = Literal["plot", "tree", "farm", "product"]
ENTITIES: tuple[Entity, ...] = ("plot", "tree", "farm", "product")
EVENT_KIND = "registry"
_ID = operator.itemgetter("id")
CHUNK = 5_000  # records per event when many rows are versioned at once

_ROWS: dict[str, LiteralString] = {
    "plot": SQL["registry_version_plots"],
    "tree": SQL["registry_version_trees"],
    "farm": SQL["registry_version_farms"],
    "product": SQL["registry_version_products"],
}
_SET_SEQ: dict[str, LiteralString] = {
    "plot": SQL["registry_version_set_plots"],
    "tree": SQL["registry_version_set_trees"],
    "farm": SQL["registry_version_set_farms"],
    "product": SQL["registry_version_set_products"],
}
_UNVERSIONED: dict[str, LiteralString] = {
    "plot": SQL["registry_version_unversioned_plots"],
    "tree": SQL["registry_version_unversioned_trees"],
    "farm": SQL["registry_version_unversioned_farms"],
    "product": SQL["registry_version_unversioned_products"],
}
_LABEL = {"plot": "code", "tree": "tag_code", "farm": "code", "product": "name"}


def owner_name_sha256(farm_id: UUID | str, owner_name: str | None) -> str | None:
    """SHA-256 hex over the farm id, a newline and the owner's name (None without a
    name): the chain pins the name without holding it."""
    if owner_name is None:
        return None
    return hashlib.sha256(f"{farm_id}\n{owner_name}".encode()).hexdigest()


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def facts(entity: str, row: Row) -> dict[str, Any]:
    """The canonical facts of a registry row, JSON-native: Decimals as strings, dates ISO,
    geometry as stored. A farm row carries `data_consent`, `consent_withdrawn_at` and
    `owner_name` from farm_private (absent: no consent, no name); its `data_consent` fact
    is the consent in force (given and not withdrawn), as the EUDR export reads it, and
    `authority_consent: true` is there only while that consent is given (trace/dds.py)."""
    if entity == "plot":
        return {
            "code": row["code"],
            "farm_id": _str(row["farm_id"]),
            "geometry": row["geometry"],
            "area_ha": _str(row["area_ha"]),
            "altitude_m": row["altitude_m"],
            "growing_area_code": row["growing_area_code"],
            "district": row["district"],
            # pages and the EUDR export (plots up to 4 ha) show the stored centroid
            "centroid_lon": _float(row["centroid_lon"]),
            "centroid_lat": _float(row["centroid_lat"]),
        }
    if entity == "tree":
        return {
            "public_id": row["public_id"],
            "tag_code": row["tag_code"],
            "plot_id": _str(row["plot_id"]),
            "lon": _float(row["lon"]),
            "lat": _float(row["lat"]),
            "species": row["species"],
            "cultivar": row["cultivar"],
            "planted_on": _iso(row["planted_on"]),
            "status": row["status"],
        }
    if entity == "farm":
        consent = bool(row.get("data_consent")) and row.get("consent_withdrawn_at") is None
        return {
            "code": row["code"],
            "display_name": row["display_name"],
            "display_name_consent": bool(row["display_name_consent"]),
            "district": row["district"],
            "commune": row["commune"],
            "data_consent": consent,
            "owner_name_sha256": owner_name_sha256(row["id"], row.get("owner_name")),
            # only when given (0046): the versions recorded before it stay as they were
            **({"authority_consent": True} if row.get("authority_consent") else {}),
        }
    if entity == "product":
        found = {"name": row["name"], "kind": row["kind"], "gtin": row["gtin"]}
        # only when given (migration 0051), so versions recorded before it still verify
        if row.get("name_i18n"):
            found["name_i18n"] = row["name_i18n"]
        return found
    raise ValueError(f"not a registry entity: {entity!r} (one of {', '.join(ENTITIES)})")


def _normal(value: Any) -> Any:
    """The value as a jsonb round trip gives it back (what an event's payload holds).
    jsonable gives the same values as json.loads(canonical_json(value)) without writing
    and parsing the text (a lot's check compares thousands of trees); unlike that round
    trip it lets a NaN stored with psql through, to be named as a difference."""
    return jsonable(value)


def _check_entity(entity: str) -> None:
    if entity not in _ROWS:
        raise ValueError(f"not a registry entity: {entity!r} (one of {', '.join(ENTITIES)})")


def record_facts(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    entity: str,
    records: Sequence[tuple[UUID | str, dict[str, Any]]],
) -> Row:
    """Append one "registry" event recording `records` [(id, facts)] of the cooperative's
    `entity` rows (facts as `facts` gives them: every key a str); returns the event row.
    The caller sets the rows' event_seq to its seq (bulk writers put it in the rows they
    COPY); `record_versions` does both."""
    _check_entity(entity)
    if not records:
        raise ValueError("a registry version records at least one row")
    payload = {
        "entity": entity,
        "records": [{"id": str(rid), "facts": f} for rid, f in records],
    }
    event = append_event(
        conn,
        cooperative_id,
        EVENT_KIND,
        [],
        datetime.now(UTC),
        payload,
        keys=keys,
        payload_json=canonical_json_str_keys(payload),
    )
    # the public pages that show these rows are built again on their next view
    page_snapshots.invalidate(conn, cooperative_id, entity, [rid for rid, _ in records])
    log.debug("registry_versioned entity=%s rows=%d seq=%s", entity, len(records), event["seq"])
    return event


def record_versions(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    entity: str,
    ids: Iterable[UUID],
) -> Row:
    """Record the current facts of the cooperative's `entity` rows `ids` in ONE registry
    event and make it their version in force (event_seq); returns the event row.
    NotFound when an id is not a row of that cooperative."""
    _check_entity(entity)
    cooperative_id = UUID(str(cooperative_id))
    wanted = list(dict.fromkeys(UUID(str(i)) for i in ids))
    if not wanted:
        raise ValueError("a registry version records at least one row")
    rows = q.rows(conn, _ROWS[entity], {"ids": wanted})
    by_id = {r["id"]: r for r in rows if r["cooperative_id"] == cooperative_id}
    missing = [str(i) for i in wanted if i not in by_id]
    if missing:
        raise NotFound(
            f"no {entity} {missing[0]} in this cooperative", entity=entity, ids=missing[:10]
        )
    event = record_facts(
        conn, keys, cooperative_id, entity, [(i, facts(entity, by_id[i])) for i in wanted]
    )
    q.execute(conn, _SET_SEQ[entity], {"seq": event["seq"], "ids": wanted})
    return event


def record_versions_chunked(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    entity: str,
    ids: Sequence[UUID],
    *,
    chunk: int = CHUNK,
) -> list[Row]:
    """`record_versions` for many rows: one event per `chunk` rows (bulk seeding)."""
    if chunk < 1:
        raise ValidationFailed("chunk must be at least 1", field="chunk")
    return [
        record_versions(conn, keys, cooperative_id, entity, ids[i : i + chunk])
        for i in range(0, len(ids), chunk)
    ]


def record_missing_versions(
    conn: DbConn, keys: KeyRing, cooperative_id: UUID, *, chunk: int = CHUNK
) -> dict[str, int]:
    """Record a version for each of the cooperative's registry rows that has none (rows
    registered before versions existed, or bulk-loaded with SQL), `chunk` rows per
    event; returns the number of rows versioned per entity."""
    done: dict[str, int] = {}
    for entity in ENTITIES:
        ids = [
            r["id"] for r in q.rows(conn, _UNVERSIONED[entity], {"cooperative_id": cooperative_id})
        ]
        record_versions_chunked(conn, keys, cooperative_id, entity, ids, chunk=chunk)
        done[entity] = len(ids)
    log.info("registry_versions_backfilled cooperative_id=%s %s", cooperative_id, done)
    return done


# --- verification ----------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _geometry_moved_km(old: Any, new: Any) -> float | None:
    try:
        a = geometry_centroid(old)
        b = geometry_centroid(new)
    except (ValidationFailed, TypeError, ValueError, AttributeError, IndexError):
        return None
    return distance_m(a[0], a[1], b[0], b[1]) / 1000


def _differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Fields whose current value is not the recorded one."""
    return [f for f in sorted(set(recorded) | set(current)) if recorded.get(f) != current.get(f)]


def _describe(
    entity: str, fields: list[str], recorded: dict[str, Any], current: dict[str, Any]
) -> list[str]:
    """The differences as words. Details reach public verify answers: a display name is
    shown only when it was consented both before and after, the owner's name never."""
    parts = []
    for f in fields:
        old, new = recorded.get(f), current.get(f)
        if f == "geometry":
            km = _geometry_moved_km(old, new)
            parts.append(
                "geometry changed"
                + (f" (its centroid moved {km:.1f} km)" if km is not None else "")
            )
        elif f == "display_name" and not (
            recorded.get("display_name_consent") and current.get("display_name_consent")
        ):
            parts.append("display_name changed (not shown: no consent to show it)")
        elif f == "owner_name_sha256":
            parts.append("owner_name_sha256 changed: the owner's name changed (not shown)")
        else:
            parts.append(f"{f} {_show(old)} became {_show(new)}")
    if entity == "tree" and {"lon", "lat"} & set(fields):
        pos = [recorded.get("lon"), recorded.get("lat"), current.get("lon"), current.get("lat")]
        nums = [float(v) for v in pos if isinstance(v, int | float)]
        if len(nums) == 4:
            lon1, lat1, lon2, lat2 = nums
            km = distance_m(lon1, lat1, lon2, lat2) / 1000
            parts.append(f"the tree moved {km:.2f} km")
    return parts


def _problem(
    event: Row | None,
    problem: str,
    detail: str,
    entity: str,
    row: Row,
    fields: list[str] | None = None,
) -> Row:
    found: Row = {
        "seq": event["seq"] if event else None,
        "kind": event["kind"] if event else None,
        "problem": problem,
        "detail": detail,
        "record": {"type": entity, "id": str(row["id"])},
    }
    if fields is not None:
        found["fields"] = fields
    return found


def _check_row(entity: str, row: Row, events: dict[int, Row]) -> Row | None:
    """The row's problem against the event its event_seq names, or None."""
    name = f"{entity} {row[_LABEL[entity]]} (id {row['id']})"
    seq = row["event_seq"]
    if seq is None:
        return _problem(
            None,
            "missing_event",
            f"{name} has no registry version: its event_seq is empty, so no chain event"
            " vouches for its facts",
            entity,
            row,
        )
    event = events.get(seq)
    if event is None:
        return _problem(
            None,
            "missing_event",
            f"{name} names event {seq} as its registry version, but the chain has no such event",
            entity,
            row,
        )
    if event["kind"] != EVENT_KIND:
        return _problem(
            event,
            "row_mismatch",
            f"{name} names event {seq} as its registry version, but that is a"
            f" {event['kind']} event, not a registry event",
            entity,
            row,
        )
    if event["cooperative_id"] != row["cooperative_id"]:
        return _problem(
            event,
            "row_mismatch",
            f"{name} names event {seq} as its registry version, but that event is in"
            f" another cooperative's chain",
            entity,
            row,
        )
    recorded = event["records"].get(str(row["id"])) if event["entity"] == entity else None
    if not isinstance(recorded, dict):
        return _problem(
            event,
            "row_mismatch",
            f"{name} names event {seq} as its registry version, but that event does not"
            f" record this {entity}",
            entity,
            row,
        )
    current = _normal(facts(entity, row))
    if recorded == current:  # the usual answer, without listing every field
        return None
    fields = _differences(recorded, current)
    if not fields:
        return None
    return _problem(
        event,
        "row_mismatch",
        f"{name} differs from its registry version (event {seq}): "
        + "; ".join(_describe(entity, fields, recorded, current)),
        entity,
        row,
        fields,
    )


def _rolled_back(conn: DbConn, rows: dict[str, list[Row]], named: set[str]) -> list[Row]:
    """Rows whose version in force is not their newest registry version: put back, facts
    and event_seq together, to an older version (each row named once: rows with a problem
    already, in `named`, are skipped)."""
    by_id = {
        str(r["id"]): (entity, r)
        for entity, rs in rows.items()
        for r in rs
        if r["event_seq"] is not None and str(r["id"]) not in named
    }
    if not by_id:
        return []
    newer = q.rows(
        conn,
        SQL["registry_newer_versions"],
        {"ids": list(by_id), "seqs": [r["event_seq"] for _, r in by_id.values()]},
    )
    problems: list[Row] = []
    for found in sorted(newer, key=lambda n: n["id"]):
        entity, row = by_id[found["id"]]
        problems.append(
            _problem(
                {"seq": found["seq"], "kind": EVENT_KIND},
                "row_mismatch",
                f"{entity} {row[_LABEL[entity]]} (id {found['id']}) names event"
                f" {row['event_seq']} as its registry version, but event {found['seq']}"
                " recorded a newer version of it: the row was put back to an older version",
                entity,
                row,
            )
        )
    return problems


def check_version_index(conn: DbConn, event: Row) -> list[Row]:
    """A registry event's records against what registry_record_versions lists for it (the
    index lot verification trusts to find each row's newest version): a row missing
    there could hide a newer version. [] when they agree, or for other events."""
    if event["kind"] != EVENT_KIND:
        return []
    payload = event["payload"] if isinstance(event["payload"], dict) else {}
    listed = payload.get("records")
    records: list[Any] = listed if isinstance(listed, list) else []
    recorded = {r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)}
    indexed = {
        r["id"] for r in q.rows(conn, SQL["registry_version_index_of_event"], {"seq": event["seq"]})
    }
    if recorded == indexed:
        return []
    missing, extra = sorted(recorded - indexed), sorted(indexed - recorded)
    return [
        {
            "seq": event["seq"],
            "kind": EVENT_KIND,
            "problem": "row_mismatch",
            "detail": f"registry_record_versions does not list what event {event['seq']}"
            f" records: {len(missing)} row(s) missing (first: {', '.join(missing[:3]) or '-'}),"
            f" {len(extra)} not in the event (first: {', '.join(extra[:3]) or '-'}); a"
            " missing row can hide a newer version from a lot's verification",
        }
    ]


def version_seqs(
    conn: DbConn,
    *,
    plot_ids: Iterable[UUID] = (),
    tree_ids: Iterable[UUID] = (),
    farm_ids: Iterable[UUID] = (),
    product_ids: Iterable[UUID] = (),
) -> list[int]:
    """The seqs of the events the rows name (their versions in force), for verification
    to check those events' hashes, links and signatures: `verify_registry` compares rows
    with events, so a row edited together with its event's facts is caught only there."""
    found = q.rows(
        conn,
        SQL["registry_version_seqs"],
        {
            "plot_ids": list(plot_ids),
            "tree_ids": list(tree_ids),
            "farm_ids": list(farm_ids),
            "product_ids": list(product_ids),
        },
    )
    return [r["seq"] for r in found]


def _event_records(ev: Row, wanted: Iterable[str]) -> Row:
    """What registry_version_events gives of one event row read already: its entity and
    the records among it of the wanted ids ({id: facts}, the first of each id)."""
    payload = ev["payload"]
    entity: str | None = None
    records: dict[str, Any] = {}
    if ev["kind"] == EVENT_KIND and isinstance(payload, dict):
        value = payload.get("entity")
        # ->> gives a string as it is and any other value but null as its JSON text
        entity = value if value is None or isinstance(value, str) else json.dumps(value)
        listed = payload.get("records")
        if isinstance(listed, list):
            try:  # the usual shape, indexed at C speed: every record an object with an id
                index = dict(zip(reversed(list(map(_ID, listed))), reversed(listed), strict=True))
            except (TypeError, KeyError):
                index = {}
                for rec in listed:
                    if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                        index.setdefault(rec["id"], rec)
            for rid in wanted:
                if rid in index:
                    records[rid] = index[rid].get("facts")
    return {
        "seq": ev["seq"],
        "kind": ev["kind"],
        "cooperative_id": ev["cooperative_id"],
        "entity": entity,
        "records": records,
    }


def registry_rows(
    conn: DbConn,
    *,
    plot_ids: Iterable[UUID] = (),
    tree_ids: Iterable[UUID] = (),
    farm_ids: Iterable[UUID] = (),
    product_ids: Iterable[UUID] = (),
) -> dict[str, list[Row]]:
    """The rows verify_registry checks, by entity (one query per entity asked about):
    a caller that reads them first knows their event_seqs without another query."""
    asked = {"plot": plot_ids, "tree": tree_ids, "farm": farm_ids, "product": product_ids}
    rows: dict[str, list[Row]] = {}
    for entity, ids in asked.items():
        wanted = list(dict.fromkeys(ids))
        if wanted:
            rows[entity] = q.rows(conn, _ROWS[entity], {"ids": wanted})
    return rows


def verify_registry(
    conn: DbConn,
    *,
    plot_ids: Iterable[UUID] = (),
    tree_ids: Iterable[UUID] = (),
    farm_ids: Iterable[UUID] = (),
    product_ids: Iterable[UUID] = (),
    events: Mapping[int, Row] | None = None,
    rows: dict[str, list[Row]] | None = None,
) -> list[Row]:
    """Check the named rows against the registry events holding their versions.

    Returns problems shaped like verification.py's, each naming its row: [{"seq": the
    event's seq | None, "kind": its kind | None, "problem": "row_mismatch" |
    "missing_event", "detail": a sentence naming the row and every differing field with
    its recorded and current value, "record": {"type": entity, "id": str}, "fields":
    [differing fields] (when the facts differ)}]. A row whose event_seq is empty or names
    no event is "missing_event"; one naming an event that is not a registry event of its
    cooperative recording it, "row_mismatch". Ids of rows that do not exist are skipped.
    One query per entity asked about and one for all their events; `events`: event rows
    (seq, kind, cooperative_id, payload) the caller has read already, by seq, which are
    not read again (a registry event's payload can hold thousands of records); `rows`:
    registry_rows(...) of the same ids, read already.
    """
    if rows is None:
        rows = registry_rows(
            conn, plot_ids=plot_ids, tree_ids=tree_ids, farm_ids=farm_ids, product_ids=product_ids
        )
    seqs = sorted({r["event_seq"] for rs in rows.values() for r in rs if r["event_seq"]})
    given = events or {}
    by_seq: dict[int, Row] = {}
    if seqs:
        row_ids = [str(r["id"]) for rs in rows.values() for r in rs]
        # each row's record is looked for in the event its event_seq names (the only
        # one _check_row reads it from)
        ids_of: dict[int, list[str]] = {}
        for rs in rows.values():
            for r in rs:
                if r["event_seq"] in given:
                    ids_of.setdefault(r["event_seq"], []).append(str(r["id"]))
        for seq in seqs:
            if seq in given:
                by_seq[seq] = _event_records(given[seq], ids_of.get(seq, []))
        unread = [seq for seq in seqs if seq not in given]
        for e in (
            q.rows(conn, SQL["registry_version_events"], {"seqs": unread, "ids": row_ids})
            if unread
            else []
        ):
            event = by_seq.setdefault(
                e["seq"],
                {
                    "seq": e["seq"],
                    "kind": e["kind"],
                    "cooperative_id": e["cooperative_id"],
                    "entity": e["entity"],
                    "records": {},
                },
            )
            if e["id"] is not None:
                event["records"].setdefault(e["id"], e["facts"])
    problems = []
    for entity in ENTITIES:
        for row in rows.get(entity, []):
            found = _check_row(entity, row, by_seq)
            if found is not None:
                problems.append(found)
    problems.extend(_rolled_back(conn, rows, {p["record"]["id"] for p in problems}))
    log.info(
        "registry_verified rows=%d events=%d problems=%d",
        sum(len(rs) for rs in rows.values()),
        len(by_seq),
        len(problems),
    )
    return problems
