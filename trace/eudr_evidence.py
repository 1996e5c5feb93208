"""EUDR evidence of no deforestation, per plot: the trees' planting dates, risk screening
results, and the plausibility of a lot's volume against its plots' area.

- Trees: from the tree registry, the share of a plot's trees planted on or before the EU's
  cut-off date (31 December 2020) and the earliest planting date. Coffee already growing
  at the cut-off is strong evidence that the plot was not cleared after it.
- Screening: a result per plot from a file (CSV or JSON; Whisp, Global Forest Watch...)
  or entered by hand with a note. A file is taken whole or not at all: every refused row
  is named with its field. Each import or entry is one signed chain event of the
  cooperative ("eudr_screening") recording every row's facts, and the rows name it
  (event_seq), so that `verify_screenings` names a row edited behind the application's
  back (psql cannot sign a new event).
- Plausibility: the lot's cherry kg per plot and season against the plot's area times
  COFFEETRACE_EUDR_MAX_CHERRY_KG_PER_HA, so that a lot cannot declare more coffee than its
  plots can grow ("declaration in excess").
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event, events_of_kind
from coffeetrace.trace.jsonutil import jsonable, loads_bounded
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "eudr_evidence.sql")
log = logging.getLogger(__name__)

CUTOFF = date(2020, 12, 31)  # Regulation (EU) 2023/1115, art. 2(13)
EVENT_KIND = "eudr_screening"
RISKS = ("low", "standard", "high")
# What screening tools say, as the EU's three categories (art. 29). Whisp answers "low",
# "medium" or "high" risk; Global Forest Watch style answers "no loss" / "loss". A category
# not listed is refused by name rather than guessed.
RISK_OF = {
    "low": "low",
    "low risk": "low",
    "negligible": "low",
    "no loss": "low",
    "no deforestation": "low",
    "standard": "standard",
    "standard risk": "standard",
    "medium": "standard",
    "medium risk": "standard",
    "more info needed": "standard",
    "high": "high",
    "high risk": "high",
    "loss": "high",
    "deforestation": "high",
}
FIELDS = (
    "plot",
    "risk",
    "source",
    "analysis_id",
    "analysis_date",
    "note",
    "mitigation_note",
    "land_use_note",
)
LIMITS = {
    "plot": 200,
    "source": 120,
    "analysis_id": 200,
    "note": 2000,
    "mitigation_note": 2000,
    "land_use_note": 2000,
}
# a JSON file is a list of flat objects, or {"screenings": [...]}: 3 levels of arrays/objects
JSON_MAX_DEPTH = 3
# a str decoded from JSON may hold a lone UTF-16 surrogate, which no database text can store
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
FACTS = (
    "plot_id",
    "risk",
    "source_category",
    "source",
    "analysis_id",
    "analysis_date",
    "note",
    "mitigation_note",
    "land_use_note",
    "recorded_by",
    "recorded_at",
)


def lot_plots(conn: DbConn, lot_id: UUID) -> list[Row]:
    """The plots whose trees fed the lot (any depth upstream), by code."""
    return q.rows(conn, SQL["lot_plots"], {"lot_id": lot_id})


def screen_lot_plots(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    lot_id: UUID,
    item: Mapping[str, Any],
    *,
    recorded_by: str,
) -> list[Row]:
    """The same screening result (`item` without its plot) for each of the lot's plots of
    the cooperative, checked as an import and recorded in one chain event."""
    plots = {
        str(p["id"]): p for p in lot_plots(conn, lot_id) if p["cooperative_id"] == cooperative_id
    }
    checked = []
    for plot_id in plots:
        values, errors = _checked({**item, "plot": plot_id}, plots, note_required=False)
        if errors:
            field, why = errors[0]
            raise ValidationFailed(f"{field} {why}", field=field)
        checked.append(values)
    return _record(conn, keys, cooperative_id, checked, recorded_by, "import") if checked else []


# --- trees ------------------------------------------------------------------------


def tree_evidence(conn: DbConn, plot_ids: Sequence[UUID]) -> dict[UUID, Row]:
    """Per plot: {"trees", "planted_by_cutoff", "planted_after_cutoff", "planting_unknown",
    "share_planted_by_cutoff" (of the trees with a known date; None without any),
    "earliest_planted_on"}. A plot without trees is absent."""
    found = q.rows(conn, SQL["plot_tree_planting"], {"plot_ids": list(plot_ids), "cutoff": CUTOFF})
    out: dict[UUID, Row] = {}
    for r in found:
        known = r["planted_by_cutoff"] + r["planted_after_cutoff"]
        out[r["plot_id"]] = {
            "trees": r["trees"],
            "planted_by_cutoff": r["planted_by_cutoff"],
            "planted_after_cutoff": r["planted_after_cutoff"],
            "planting_unknown": r["planting_unknown"],
            "share_planted_by_cutoff": round(r["planted_by_cutoff"] / known, 4) if known else None,
            "earliest_planted_on": r["earliest_planted_on"],
        }
    return out


# --- screening --------------------------------------------------------------------


def screening_facts(row: Row) -> dict[str, Any]:
    """What the chain records of a screening row, JSON-native."""
    found: dict[str, Any] = jsonable({f: row[f] for f in FACTS})
    return found


def _text(value: Any, field: str, required: bool) -> tuple[str | None, str | None]:
    """(the value stripped or None, or an error message)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, ("is required" if required else None)
    if not isinstance(value, str):
        return None, "must be text (a JSON string)"
    text = value.strip()
    if "\x00" in text:
        return None, "must not contain NUL"
    if not text.isascii() and _LONE_SURROGATE.search(text):
        return None, "holds a lone UTF-16 surrogate, which is not Unicode text"
    limit = LIMITS.get(field)
    if limit is not None and len(text) > limit:
        return None, f"is longer than {limit} characters"
    return text, None


def _checked(
    item: Mapping[str, Any], plots: Mapping[str, Row], *, note_required: bool
) -> tuple[Row, list[tuple[str, str]]]:
    """A screening's values checked: (values, [(field, why)])."""
    errors: list[tuple[str, str]] = []
    values: Row = {}
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        errors.append((unknown[0], f"is not a field (fields: {', '.join(FIELDS)})"))
    for field in ("plot", "source", "analysis_id", "note", "mitigation_note", "land_use_note"):
        required = field in ("plot", "source") or (field == "note" and note_required)
        values[field], why = _text(item.get(field), field, required)
        if why:
            errors.append((field, why))
    ref = values.get("plot")
    if ref is not None:
        plot = plots.get(ref)
        if plot is None:
            errors.append(("plot", f"no plot {ref!r} (code or id) in this cooperative"))
        else:
            values["plot_id"] = plot["id"]
    risk, why = _text(item.get("risk"), "risk", True)
    if why:
        errors.append(("risk", why))
    elif risk is not None:
        mapped = RISK_OF.get(" ".join(risk.lower().replace("_", " ").split()))
        if mapped is None:
            errors.append(
                ("risk", f"{risk[:80]!r} is not a risk category (low, standard, high or a"
                 f" source's: {', '.join(sorted(set(RISK_OF) - set(RISKS)))})")
            )  # fmt: skip
        values["risk"] = mapped
        values["source_category"] = None if risk.lower() == mapped else risk[:80]
    when = item.get("analysis_date")
    if when is None or (isinstance(when, str) and not when.strip()):
        errors.append(("analysis_date", "is required (YYYY-MM-DD)"))
    else:
        try:
            day = date.fromisoformat(str(when).strip()[:10])
        except ValueError:
            errors.append(("analysis_date", f"{str(when)[:40]!r} is not a date (YYYY-MM-DD)"))
        else:
            if day > datetime.now(UTC).date():
                errors.append(("analysis_date", f"{day} is in the future"))
            values["analysis_date"] = day
    return values, errors


def parse_screenings(data: bytes, fmt: str) -> list[Mapping[str, Any]]:
    """The rows of a screening file: CSV with a header row (the FIELDS), or JSON, a list of
    objects or {"screenings": [...]}. ValidationFailed when the file cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the file is not UTF-8", field="file") from None
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "plot" not in reader.fieldnames:
            raise ValidationFailed(
                f"the CSV needs a header row with at least plot, risk, source, analysis_date"
                f" (fields: {', '.join(FIELDS)})",
                field="file",
            )
        try:
            # a row with more cells than the header has them under None: named as a field
            return [{k or "(extra cells)": v for k, v in row.items()} for row in reader]
        except csv.Error as exc:
            raise ValidationFailed(f"the CSV cannot be read: {exc}", field="file") from None
    if fmt == "json":
        try:
            # bounded and without recursion; refuses lone surrogates (see loads_bounded)
            doc = loads_bounded(text, max_depth=JSON_MAX_DEPTH)
        except ValueError as exc:
            raise ValidationFailed(f"the JSON cannot be read: {exc}", field="file") from None
        if isinstance(doc, dict):
            doc = doc.get("screenings")
        if not isinstance(doc, list) or not all(isinstance(x, dict) for x in doc):
            raise ValidationFailed(
                'the JSON is a list of screening objects, or {"screenings": [...]}',
                field="file",
            )
        return doc
    raise ValidationFailed(f"the format is csv or json, not {fmt!r}", field="format")


def _record(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    rows: Sequence[Row],
    recorded_by: str,
    how: str,
) -> list[Row]:
    """Insert the checked screenings and record them in one signed chain event."""
    stored = []
    for values in rows:
        row = q.one(
            conn,
            SQL["insert_screening"],
            {
                "cooperative_id": cooperative_id,
                "plot_id": values["plot_id"],
                "risk": values["risk"],
                "source_category": values.get("source_category"),
                "source": values["source"],
                "analysis_id": values.get("analysis_id"),
                "analysis_date": values["analysis_date"],
                "note": values.get("note"),
                "mitigation_note": values.get("mitigation_note"),
                "land_use_note": values.get("land_use_note"),
                "recorded_by": recorded_by,
            },
        )
        assert row is not None  # insert ... returning
        stored.append(row)
    payload = {
        "how": how,
        "screenings": [{"id": str(r["id"]), "facts": screening_facts(r)} for r in stored],
    }
    event = append_event(
        conn, cooperative_id, EVENT_KIND, [], datetime.now(UTC), payload, keys=keys
    )
    ids = [r["id"] for r in stored]
    q.execute(conn, SQL["set_screening_seq"], {"seq": event["seq"], "ids": ids})
    log.info("eudr_screenings_recorded rows=%d how=%s seq=%s", len(stored), how, event["seq"])
    return [{**r, "event_seq": event["seq"]} for r in stored]


def _plots_named(conn: DbConn, cooperative_id: UUID, refs: Sequence[str]) -> dict[str, Row]:
    found = q.rows(
        conn, SQL["plots_by_code_or_id"], {"cooperative_id": cooperative_id, "codes": list(refs)}
    )
    out: dict[str, Row] = {}
    for p in found:
        out[str(p["id"])] = p
        out[p["code"]] = p
    return out


def import_screenings(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    data: bytes,
    fmt: str,
    *,
    recorded_by: str,
    max_rows: int,
    max_bytes: int,
) -> list[Row]:
    """Import a screening file whole: the stored rows, or ValidationFailed naming every
    refused row (1-based, as the file counts its records) and field in `details.errors`."""
    if len(data) > max_bytes:
        raise ValidationFailed(
            f"the file has {len(data)} bytes; at most {max_bytes}"
            " (COFFEETRACE_EUDR_SCREENING_MAX_BYTES): split it",
            field="file",
            max_bytes=max_bytes,
        )
    items = parse_screenings(data, fmt)
    if not items:
        raise ValidationFailed("the file holds no screening", field="file")
    if len(items) > max_rows:
        raise ValidationFailed(
            f"the file holds {len(items)} screenings; at most {max_rows}"
            " (COFFEETRACE_EUDR_SCREENING_MAX_ROWS): split it",
            field="file",
            max_rows=max_rows,
        )
    # only references that are text a database can hold are looked up (the others are
    # refused row by row below)
    refs = [r for r in (_text(i.get("plot"), "plot", True)[0] for i in items) if r is not None]
    plots = _plots_named(conn, cooperative_id, refs)
    checked: list[Row] = []
    errors: list[Row] = []
    for n, item in enumerate(items, start=1):
        values, why = _checked(item, plots, note_required=False)
        errors.extend({"row": n, "field": f, "message": m} for f, m in why)
        checked.append(values)
    if errors:
        first = errors[0]
        raise ValidationFailed(
            f"{len(errors)} refusal{'s' if len(errors) > 1 else ''}, nothing imported; first:"
            f" row {first['row']}, {first['field']} {first['message']}",
            field="file",
            errors=errors[:200],
        )
    return _record(conn, keys, cooperative_id, checked, recorded_by, "import")


def record_screening(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    plot_id: UUID,
    item: Mapping[str, Any],
    *,
    recorded_by: str,
) -> Row:
    """One screening entered by hand (a note is required: what was looked at); NotFound
    for another cooperative's plot, ValidationFailed naming the field."""
    plot = q.one(conn, SQL["own_plot"], {"plot_id": plot_id, "cooperative_id": cooperative_id})
    if plot is None:
        raise NotFound("no such plot in this cooperative", plot_id=str(plot_id))
    values, errors = _checked(
        {**item, "plot": str(plot_id)}, {str(plot_id): plot}, note_required=True
    )
    if errors:
        field, why = errors[0]
        raise ValidationFailed(
            f"{field} {why}", field=field, errors=[{"field": f, "message": m} for f, m in errors]
        )
    (row,) = _record(conn, keys, cooperative_id, [values], recorded_by, "entry")
    return row


def plot_screenings(conn: DbConn, cooperative_id: UUID, plot_id: UUID) -> list[Row]:
    """The plot's screenings, newest first; NotFound for another cooperative's plot."""
    params = {"plot_id": plot_id, "cooperative_id": cooperative_id}
    if q.one(conn, SQL["own_plot"], params) is None:
        raise NotFound("no such plot in this cooperative", plot_id=str(plot_id))
    return q.rows(conn, SQL["plot_screenings"], params)


def latest_screenings(conn: DbConn, plot_ids: Sequence[UUID]) -> dict[UUID, Row]:
    found = q.rows(conn, SQL["latest_screenings"], {"plot_ids": list(plot_ids)})
    return {r["plot_id"]: r for r in found}


def verify_screenings(conn: DbConn, cooperative_id: UUID) -> list[Row]:
    """Each screening row of the cooperative against the chain event it names: problems in
    verification's shape ({"seq", "kind", "problem", "detail", "record"}), the fields that
    differ named; and every screening an event recorded that is no longer stored. The
    events' own hashes and signatures are verification.py's (verify_chain) to check: call
    this beside verify_chain for a cooperative's whole chain."""
    rows = q.rows(conn, SQL["screenings_of_cooperative"], {"cooperative_id": cooperative_id})
    events = events_of_kind(conn, cooperative_id, EVENT_KIND)
    recorded: dict[str, tuple[int, Row]] = {}
    for event in events:
        for item in (event["payload"] or {}).get("screenings") or []:
            recorded[str(item.get("id"))] = (event["seq"], item.get("facts") or {})
    problems: list[Row] = []
    for row in rows:
        rid = str(row["id"])
        record = {"type": "plot_screening", "id": rid}
        found = recorded.pop(rid, None)
        if found is None or row["event_seq"] != found[0]:
            problems.append({"seq": row["event_seq"], "kind": EVENT_KIND,
                "problem": "screening_unrecorded",
                "detail": f"screening {rid} of plot {row['plot_id']} is in no eudr_screening"
                " event that names it: it was written behind the application's back",
                "record": record})  # fmt: skip
            continue
        seq, facts = found
        current = screening_facts(row)
        fields = [f for f in FACTS if facts.get(f) != current.get(f)]
        if fields:
            changes = "; ".join(
                f"{f} {json.dumps(facts.get(f))} became {json.dumps(current.get(f))}"
                for f in fields
            )
            problems.append({"seq": seq, "kind": EVENT_KIND, "problem": "screening_edited",
                "detail": f"screening {rid} differs from what event {seq} recorded: {changes}",
                "record": record, "fields": fields})  # fmt: skip
    for rid, (seq, _facts) in recorded.items():
        problems.append({"seq": seq, "kind": EVENT_KIND, "problem": "screening_missing",
            "detail": f"screening {rid}, recorded by event {seq}, is not in the store",
            "record": {"type": "plot_screening", "id": rid}})  # fmt: skip
    return problems


# --- plausibility -----------------------------------------------------------------


def plot_seasons(conn: DbConn, lot_id: UUID) -> dict[UUID, list[Row]]:
    """The lot's cherry kg per plot and season: {plot_id: [{"season", "cherry_kg"}]}."""
    out: dict[UUID, list[Row]] = {}
    for r in q.rows(conn, SQL["lot_plot_seasons"], {"lot_id": lot_id}):
        out.setdefault(r["plot_id"], []).append(
            {"season": r["season"], "cherry_kg": float(r["cherry_kg"])}
        )
    return out


def capacity(area_ha: float, seasons: Sequence[Row], max_kg_per_ha: float) -> Row:
    """A plot's capacity per season and the seasons the lot's kg exceed it."""
    most = round(float(area_ha) * max_kg_per_ha, 3)
    excess = [s for s in seasons if s["cherry_kg"] > most]
    return {"max_cherry_kg_per_season": most, "seasons": list(seasons), "excess": excess}
