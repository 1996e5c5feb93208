"""EPCIS 2.0 JSON-LD export of a lot's whole history.

Harvests become ObjectEvents (action ADD, bizStep commissioning) of the cherry lot's
class with lot master data (ILMD); processing steps become TransformationEvents, and
packing AggregationEvents (the packed lot as parent, the packed inputs as children);
each plot's growing-period sensor summary is an ObjectEvent (OBSERVE, sensor_reporting)
with a sensorElementList. Lots are named by GS1 Digital Link URIs
{base_url}/01/{gtin}/10/{code} when their product has a GTIN, else by their public
lot page {base_url}/l/{public_id}; trees by {base_url}/t/{public_id}.

eventTime is the UTC instant; eventTimeZoneOffset the offset, at that instant, of the zone
of the event's place (trace/zones.py): a harvest's or a plot's sensor summary the zone of
its plot, a processing step (whose place is free text) the cooperative's, both within the
cooperative's country. A transformation lists every input and every output with the
kilograms it recorded, also outputs outside the exported lot's history. Extension terms
and measurements are the `ct:` vocabulary's (trace/vocabulary.py), typed as it defines.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID
from zoneinfo import ZoneInfo

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import dds_references, epcis_trail, statements, vocabulary, zones
from coffeetrace.trace import queries as q
from coffeetrace.trace.genealogy import trace_backward

SQL = load_queries("coffeetrace.trace", "exports.sql")
EPCIS_SQL = load_queries("coffeetrace.trace", "epcis.sql")

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
CBV_STEPS = vocabulary.CBV_STEPS
KG3 = Decimal("0.001")
GROWING_PERIOD = timedelta(days=365)
# FIWARE metric -> (EPCIS measurement type, UN/CEFACT Rec 20 unit)
SENSOR_TYPES: dict[str, tuple[str, str]] = {
    "temperature": ("Temperature", "CEL"),
    "soilTemperature": ("Temperature", "CEL"),
    "relativeHumidity": ("RelativeHumidity", "P1"),
    "precipitation": ("Length", "MMT"),
    "soilMoistureVwc": ("Dimensionless", "P1"),
    "leafWetness": ("Dimensionless", "P1"),
    "solarRadiation": ("Irradiance", "D54"),
    "atmosphericPressure": ("Pressure", "A97"),
    "windSpeed": ("Speed", "MTS"),
}
_NS = uuid.UUID("6f1d7c1e-5d0b-4b8e-9a53-c0ffee000001")


def lot_uri(base_url: str, lot: Row) -> str:
    """Digital Link of the lot when its product has a GTIN, else its public page."""
    base = base_url.rstrip("/")
    if lot.get("gtin"):
        return f"{base}/01/{lot['gtin']}/10/{quote(lot['code'], safe='')}"
    return f"{base}/l/{lot['public_id']}"


def _event_id(*parts: Any) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, ':'.join(str(p) for p in parts))}"


def _kg(value: Any) -> float:
    return float(Decimal(str(value)))


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Places:
    """The zone of each place events happen at: the cooperative's country, narrowed to the
    zone nearest the plot (or, for the cooperative's own steps, its main plot)."""

    def __init__(self, conn: DbConn, country: str | None, plot_ids: list[UUID]) -> None:
        self.country = country
        rows = q.rows(conn, EPCIS_SQL["epcis_plot_places"], {"ids": plot_ids})
        self.plots = {r["id"]: (r["centroid_lon"], r["centroid_lat"]) for r in rows}
        main = self.plots.get(plot_ids[0]) if plot_ids else None
        self.cooperative = self._zone(main)

    def _zone(self, where: tuple[float, float] | None) -> ZoneInfo | None:
        lon, lat = where or (None, None)
        return zones.zone_info(zones.zone_name(self.country, lon, lat))

    def of_plot(self, plot_id: UUID) -> ZoneInfo | None:
        where = self.plots.get(plot_id)
        return self._zone(where) if where else self.cooperative

    @staticmethod
    def when(at: datetime, zone: ZoneInfo | None) -> Row:
        """eventTime (UTC) and eventTimeZoneOffset (the zone's, at that instant)."""
        return {"eventTime": _time(at), "eventTimeZoneOffset": zones.utc_offset(at, zone)}


def export_epcis(
    conn: DbConn,
    lot_id: UUID,
    base_url: str,
    *,
    dds_environment: str | None = "production",
    dds_numbers: Literal["public", "all"] = "public",
) -> dict[str, Any]:
    """The EPCISDocument (JSON-LD dict, schemaVersion "2.0") of the lot and its upstream:
    harvests as ObjectEvents (ADD, bizStep commissioning, lot master data in ilmd),
    transformations as TransformationEvents, packing as AggregationEvents, growing-period
    sensor summaries in sensorElementList (one OBSERVE ObjectEvent per plot).
    Identifiers: GS1 Digital Link {base_url}/01/{gtin}/10/{code} when the product has a
    GTIN, else {base_url}/l/{public_id}. Extension terms use the prefix "ct" bound to
    {base_url}/voc/, where the API serves their definitions (trace/vocabulary.py).
    eventTime in UTC, eventTimeZoneOffset that of the event's place. The DDS references in
    force for the lot (dds_references.in_force; statements filed through coffeetrace count
    when AVAILABLE in `dds_environment`) are one OBSERVE ObjectEvent per lot they were
    recorded on, with gs1:regulatoryInformation: `dds_numbers` "all" for the lot's own
    organisation (every reference, with its verification number), "public" (the default,
    the public /l/{id}/epcis) only the reference numbers their organisations show on
    pages, never a verification number. Events are ordered by eventTime.
    Validates against GS1's EPCIS 2.0 JSON schema."""
    base = base_url.rstrip("/")
    voc = vocabulary.namespace(base)
    trace = trace_backward(conn, lot_id)
    lot = trace["lot"]
    steps = q.rows(
        conn, SQL["transformation_details"], {"ids": [t["id"] for t in trace["transformations"]]}
    )
    # every lot a step touched: a step's outputs outside this lot's history are listed too
    lot_ids = {r["lot_id"] for r in trace["lots"]} | {
        UUID(x["lot_id"]) for s in steps for x in [*(s["inputs"] or []), *(s["outputs"] or [])]
    }
    ident = {r["id"]: r for r in q.rows(conn, SQL["lot_identities"], {"ids": list(lot_ids)})}
    coop = q.one(conn, SQL["cooperative"], {"id": lot["cooperative_id"]}) or {}
    places = _Places(conn, coop.get("country"), [p["plot_id"] for p in trace["plots"]])
    cherry = [r["lot_id"] for r in trace["lots"] if r["produced_by"] is None]
    events: list[Row] = []
    for h in q.rows(conn, SQL["harvest_details"], {"lot_ids": cherry}):
        events.append(_harvest_event(h, ident[h["lot_id"]], base, coop, places))
    for s in steps:
        events.extend(_step_events(s, ident, base, voc, places))
    events.extend(_sensor_events(conn, trace, ident, base, places))
    # sensor data partners captured on the lots (a container's temperature log)
    events.extend(epcis_trail.observations(conn, [r["lot_id"] for r in trace["lots"]]))
    references = dds_references.in_force(conn, lot_id, environment=dds_environment)
    if dds_numbers != "all":
        references = [r for r in references if r["number_public"]]
    events.extend(_regulatory_events(references, ident, base, places, dds_numbers == "all"))
    events.sort(key=lambda e: (e["eventTime"], e["eventID"]))
    doc: Row = {
        "@context": [EPCIS_CONTEXT, {"ct": voc}],
        "id": _event_id("document", lot["id"], datetime.now(UTC).isoformat()),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(datetime.now(UTC)),
        "epcisBody": {"eventList": events},
    }
    served = statements.served(conn, lot_id)
    if served is not None:
        # the evidence a partner keeps: the signed statement's signature, the newest
        # checkpoint of the chain and the inclusion proofs of the lot's events in it
        doc["ct:statementSignature"] = served["signature"]
        doc["ct:checkpoint"] = served["checkpoint"]
        doc["ct:inclusion"] = served["inclusion"]
    return doc


def _harvest_event(h: Row, lot: Row, base: str, coop: Row, places: _Places) -> Row:
    ilmd: Row = {
        "cbvmda:lotNumber": lot["code"],
        "cbvmda:countryOfOrigin": coop.get("country") or "VN",
        "ct:treePublicId": h["tree_public_id"],
        "ct:treeTag": h["tag_code"],
        "ct:species": h["species"],
        "ct:farmCode": h["farm_code"],
        "ct:plotCode": h["plot_code"],
        "ct:harvestCherryKg": _kg(h["cherry_kg"]),
    }
    if h["cultivar"]:
        ilmd["ct:cultivar"] = h["cultivar"]
    if h["growing_area_code"]:
        ilmd["ct:growingAreaCode"] = h["growing_area_code"]
    if h["ripeness_pct"] is not None:
        ilmd["ct:ripenessPct"] = _kg(h["ripeness_pct"])
    return {
        "type": "ObjectEvent",
        "eventID": _event_id("harvest", h["harvest_id"], h["lot_id"]),
        **places.when(h["harvest_time"], places.of_plot(h["plot_id"])),
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [{"epcClass": lot_uri(base, lot), "quantity": _kg(h["kg"]), "uom": "KGM"}],
        "readPoint": {"id": f"{base}/t/{h['tree_public_id']}"},
        "bizLocation": {
            "id": f"urn:coffeetrace:plot:{coop.get('code')}:{quote(h['plot_code'], safe='')}"
        },
        "ilmd": ilmd,
        "ct:harvestId": str(h["harvest_id"]),
    }


def _quantity(base: str, lot: Row, kg: Decimal) -> Row:
    return {"epcClass": lot_uri(base, lot), "quantity": _kg(kg), "uom": "KGM"}


def _packed_children(inputs: list[tuple[Row, Decimal]], outs: list[Decimal]) -> list[list[Decimal]]:
    """Per packed lot, the kg of each input in it: each input divided in proportion to the
    packed lots, to the gram."""
    total = sum(outs, Decimal(0))  # positive: every output of a step weighs something
    parts: list[list[Decimal]] = [[] for _ in outs]
    for _, kg in inputs:
        given = Decimal(0)
        for i, out in enumerate(outs):
            # the last packed lot takes the rest: the parts add up to the input exactly
            share = (kg * out / total).quantize(KG3) if i < len(outs) - 1 else kg - given
            parts[i].append(share)
            given += share
    return parts


def _step_events(s: Row, ident: dict[UUID, Row], base: str, voc: str, places: _Places) -> list[Row]:
    inputs = [(ident[UUID(i["lot_id"])], Decimal(i["kg"])) for i in s["inputs"] or []]
    outputs = [(ident[UUID(o["lot_id"])], Decimal(o["kg"])) for o in s["outputs"] or []]
    common = places.when(s["occurred_at"], places.cooperative)
    ext: Row = {"ct:step": s["step"]}
    if s["place"]:
        ext["ct:place"] = s["place"]
    if s["evidence"]:
        ext["ct:evidence"] = s["evidence"]
    measurements = vocabulary.typed_measurements(s["measurements"])
    if s["step"] == "packing":
        events = []
        children = _packed_children(inputs, [kg for _, kg in outputs])
        for (lot, kg), parts in zip(outputs, children, strict=True):
            events.append(
                {
                    "type": "AggregationEvent",
                    "eventID": _event_id("packing", s["id"], lot["id"]),
                    **common,
                    "parentID": lot_uri(base, lot),
                    "childQuantityList": [
                        _quantity(base, child, part)
                        for (child, _), part in zip(inputs, parts, strict=True)
                    ],
                    "action": "ADD",
                    "bizStep": "packing",
                    "disposition": "in_progress",
                    **ext,
                    "ct:packedKg": _kg(kg),
                    **({"ct:measurements": measurements} if measurements else {}),
                }
            )
        return events
    own_step = vocabulary.biz_step(s["step"])
    event: Row = {
        "type": "TransformationEvent",
        "eventID": _event_id("transformation", s["id"]),
        **common,
        "inputQuantityList": [_quantity(base, lot, kg) for lot, kg in inputs],
        "outputQuantityList": [_quantity(base, lot, kg) for lot, kg in outputs],
        "transformationID": f"urn:uuid:{s['id']}",
        "bizStep": CBV_STEPS[s["step"]] if own_step is None else f"{voc}{own_step}",
        "disposition": "in_progress",
        **ext,
    }
    ilmd = dict(measurements)
    if len(outputs) == 1:
        ilmd["cbvmda:lotNumber"] = outputs[0][0]["code"]
    if ilmd:
        event["ilmd"] = ilmd
    return [event]


def _sensor_events(
    conn: DbConn, trace: Row, ident: dict[UUID, Row], base: str, places: _Places
) -> list[Row]:
    """One OBSERVE event per plot: its daily sensor summaries over the growing period
    (the year up to the lot's last harvest), against the cherry lots it fed."""
    lot = trace["lot"]
    end_day = lot["harvest_to"]
    if end_day is None:
        return []
    until = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)
    since = until - GROWING_PERIOD
    lots_by_plot: dict[UUID, set[UUID]] = {}
    tree_plot = {t["tree_id"]: t["plot_id"] for t in trace["trees"]}
    for h in trace["harvests"]:
        lots_by_plot.setdefault(tree_plot[h["tree_id"]], set()).add(h["lot_id"])
    events = []
    for plot in trace["plots"]:
        rows = q.rows(
            conn,
            SQL["plot_sensor_summary"],
            {"plot_id": plot["plot_id"], "since": since, "until": until},
        )
        if not rows:
            continue
        elements = []
        for r in rows:
            kind, uom = SENSOR_TYPES.get(r["metric"], ("Dimensionless", "C62"))
            report: Row = {
                "type": kind,
                "uom": uom,
                "ct:metric": r["metric"],
                "meanValue": round(float(r["mean"]), 4),
                "minValue": float(r["min"]),
                "maxValue": float(r["max"]),
                "ct:readings": int(r["n"]),
            }
            if r["metric"] == "precipitation":
                report["value"] = round(float(r["total"]), 3)  # rain adds up over the period
            elements.append(
                {
                    "sensorMetadata": {
                        "startTime": _time(r["first_day"]),
                        "endTime": _time(r["last_day"] + timedelta(days=1)),
                        "dataProcessingMethod": vocabulary.namespace(base)
                        + vocabulary.DAILY_SUMMARY,
                    },
                    "sensorReport": [report],
                }
            )
        cherry = sorted(lots_by_plot.get(plot["plot_id"], set()), key=str)
        events.append(
            {
                "type": "ObjectEvent",
                "eventID": _event_id("sensors", plot["plot_id"], lot["id"], since.date()),
                **places.when(
                    until - timedelta(microseconds=1000), places.of_plot(plot["plot_id"])
                ),
                "action": "OBSERVE",
                "bizStep": "sensor_reporting",
                "quantityList": [
                    {
                        "epcClass": lot_uri(base, ident[c]),
                        "uom": "KGM",
                        "quantity": _kg(ident[c]["quantity_kg"]),
                    }
                    for c in cherry
                ],
                "readPoint": {
                    "id": f"urn:coffeetrace:plot:{lot['cooperative_code']}:"
                    f"{quote(plot['code'], safe='')}"
                },
                "sensorElementList": elements,
            }
        )
    return events


def _regulatory_events(
    references: list[Row], ident: dict[UUID, Row], base: str, places: _Places, verification: bool
) -> list[Row]:
    """One OBSERVE event per lot that DDS references were recorded on, at the newest of
    them, carrying them as GS1 regulatory information."""
    by_lot: dict[UUID, list[Row]] = {}
    for r in references:
        by_lot.setdefault(r["lot"]["id"], []).append(r)
    events = []
    for lot_id, refs in by_lot.items():
        lot = ident[lot_id]
        at = max(r["recorded_at"] for r in refs)
        numbers = sorted(r["reference_number"] for r in refs)
        events.append(
            {
                "type": "ObjectEvent",
                "eventID": _event_id("dds", lot_id, *numbers),
                **places.when(at, places.cooperative),
                "action": "OBSERVE",
                "quantityList": [_quantity(base, lot, Decimal(lot["quantity_kg"]))],
                "gs1:regulatoryInformation": dds_references.regulatory_information(
                    refs, verification=verification
                ),
            }
        )
    return events
