"""A lot's EUDR readiness: per plot it came from, what evidence is present and what blocks
a due diligence statement.

Blockers, each with a code and a sentence:
- `not_geolocated`: the plot's stored geometry breaks the registry's or the EU's rules, so
  no GeoJSON can be sent for it;
- `polygon_missing`: the plot is above 4 ha and only a point is stored;
- `not_screened`: no risk screening result for the plot;
- `high_risk_unmitigated`: its newest screening is high risk without a mitigation note;
- `planted_after_cutoff`: trees planted after 31 December 2020 and no land-use evidence
  (a land-use note on the newest screening);
- `volume_above_capacity`: in a season, the lot's cherry kg from the plot exceed the
  plot's area times COFFEETRACE_EUDR_MAX_CHERRY_KG_PER_HA.

`export dds` (CLI and API) refuses with that list (`require_ready`) unless forced; a forced
export is recorded in the chain as an "eudr_readiness_override" event naming the blockers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import CoffeetraceError, NotFound, RuleViolation
from coffeetrace.sql import load_queries
from coffeetrace.trace import eudr, eudr_evidence
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "eudr_evidence.sql")
OVERRIDE_KIND = "eudr_readiness_override"


def _blocker(code: str, message: str) -> Row:
    return {"code": code, "message": message}


def _geolocation(plot: Row) -> tuple[Row, list[Row]]:
    """What is present of the plot's geolocation, and its blockers."""
    geometry = plot["geometry"] if isinstance(plot["geometry"], dict) else {}
    stored = geometry.get("type")
    present: Row = {"stored": stored, "export_as": None}
    if stored not in ("Point", "Polygon"):
        return present, [_blocker("not_geolocated", f"plot {plot['code']} has no geolocation")]
    try:
        needed = eudr.export_kind(plot)
    except (CoffeetraceError, KeyError, TypeError, ValueError, IndexError):
        return present, [
            _blocker("not_geolocated", f"plot {plot['code']}: its geometry cannot be read")
        ]
    present["export_as"] = needed
    if needed == "Polygon" and stored != "Polygon":
        return present, [
            _blocker(
                "polygon_missing",
                f"plot {plot['code']} has {float(plot['area_ha']):g} ha, above 4 ha, and only"
                " a point: the EU needs its polygon",
            )
        ]
    try:
        eudr.check_plot(plot)
    except CoffeetraceError as exc:
        return present, [
            _blocker("not_geolocated", f"its geometry breaks the EU's rules: {exc.message}")
        ]
    return present, []


def readiness(
    conn: DbConn, cooperative_id: UUID, lot_id: UUID, *, max_cherry_kg_per_ha: float
) -> Row:
    """{"lot_id", "ready", "plots": [{"plot_id", "code", "farm_code", "area_ha", "present":
    {"geolocation", "trees", "screening", "capacity"}, "blockers": [{"code", "message"}]}],
    "blockers": [{"plot_id", "plot", "code", "message"}]}. The caller checked that the lot
    is the cooperative's; a plot of another cooperative upstream (shipped coffee) is
    reported by its code only, as the statement reports it."""
    plots = eudr_evidence.lot_plots(conn, lot_id)
    ids = [p["id"] for p in plots]
    trees = eudr_evidence.tree_evidence(conn, ids)
    screenings = eudr_evidence.latest_screenings(conn, ids)
    seasons = eudr_evidence.plot_seasons(conn, lot_id)
    out_plots: list[Row] = []
    flat: list[Row] = []
    for plot in plots:
        geo, blockers = _geolocation(plot)
        tree = trees.get(plot["id"])
        screening = screenings.get(plot["id"])
        cap = eudr_evidence.capacity(
            float(plot["area_ha"]), seasons.get(plot["id"], []), max_cherry_kg_per_ha
        )
        if screening is None:
            blockers.append(
                _blocker("not_screened", f"plot {plot['code']} has no risk screening result")
            )
        elif screening["risk"] == "high" and not screening["mitigation_note"]:
            blockers.append(
                _blocker(
                    "high_risk_unmitigated",
                    f"plot {plot['code']} was screened high risk ({screening['source']},"
                    f" {screening['analysis_date']}) and no mitigation note is recorded",
                )
            )
        if tree and tree["planted_after_cutoff"] and not (screening and screening["land_use_note"]):
            blockers.append(
                _blocker(
                    "planted_after_cutoff",
                    f"plot {plot['code']}: {tree['planted_after_cutoff']} of its trees were"
                    f" planted after {eudr_evidence.CUTOFF} and no land-use evidence is"
                    " recorded (a screening with a land-use note)",
                )
            )
        for season in cap["excess"]:
            blockers.append(
                _blocker(
                    "volume_above_capacity",
                    f"plot {plot['code']}: {season['cherry_kg']:g} kg of cherry in season"
                    f" {season['season']}, above its {cap['max_cherry_kg_per_season']:g} kg"
                    f" ({float(plot['area_ha']):g} ha at {max_cherry_kg_per_ha:g} kg/ha)",
                )
            )
        present = {
            "geolocation": geo,
            "trees": tree,
            "screening": None
            if screening is None
            else {
                k: screening[k]
                for k in (
                    "id",
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
            },
            "capacity": cap,
        }
        out_plots.append(
            {
                "plot_id": plot["id"],
                "code": plot["code"],
                "farm_code": plot["farm_code"],
                "area_ha": float(plot["area_ha"]),
                "present": present,
                "blockers": blockers,
            }
        )
        flat.extend({"plot_id": plot["id"], "plot": plot["code"], **b} for b in blockers)
    if not plots:
        flat.append(
            {"plot_id": None, "plot": None, "code": "no_plots",
             "message": "the lot comes from no plot: no statement can be made"}
        )  # fmt: skip
    found: Row = jsonable(
        {"lot_id": lot_id, "ready": not flat, "plots": out_plots, "blockers": flat}
    )
    return found


def require_ready(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    lot_id: UUID,
    *,
    max_cherry_kg_per_ha: float,
    force: bool = False,
    by: str,
) -> Row:
    """The lot's readiness when it is clear; otherwise RuleViolation "eudr_not_ready" with
    the blockers in its details, or, with `force`, an "eudr_readiness_override" chain event
    naming them and who forced (the caller commits it with the export)."""
    found = readiness(conn, cooperative_id, lot_id, max_cherry_kg_per_ha=max_cherry_kg_per_ha)
    # a lot from no plot has no statement to force: dds.build_dds refuses it (no_producers)
    if found["ready"] or not found["plots"]:
        return found
    blockers = found["blockers"]
    if not force:
        first = blockers[0]
        raise RuleViolation(
            "eudr_not_ready",
            f"the lot is not ready for a due diligence statement: {len(blockers)}"
            f" blocker{'s' if len(blockers) > 1 else ''}, first: {first['message']}"
            " (GET /v1/lots/{id}/eudr/readiness lists them; force overrides, recorded in"
            " the chain)",
            blockers=blockers,
        )
    event = append_event(
        conn,
        cooperative_id,
        OVERRIDE_KIND,
        [lot_id],
        datetime.now(UTC),
        {"lot_id": str(lot_id), "by": by, "blockers": blockers},
        keys=keys,
    )
    return {**found, "override_event_seq": event["seq"]}


def lot_cooperative(conn: DbConn, lot_id: UUID) -> UUID:
    """The cooperative whose lot it is (the CLI names a lot by code or public id)."""
    row = q.one(conn, SQL["lot_cooperative"], {"lot_id": lot_id})
    if row is None:
        raise NotFound("no such lot", lot_id=str(lot_id))
    cooperative_id: UUID = row["cooperative_id"]
    return cooperative_id
