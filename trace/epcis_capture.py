"""EPCIS 2.0 capture: a partner's EPCISDocument becomes a stored capture job at once, and
its events are validated and stored by the job afterwards (GS1's REST bindings: 202 and
a capture job to poll).

Accepting (`accept`) checks what can be checked cheaply and whole: the document without
its events against GS1's EPCIS 2.0 JSON schema (its @context, type, schemaVersion,
creationDate, header), and the number of events against the capture limit. It stores the
body as received as a pending job in the caller's transaction: once that commits, the
capture survives a restart. Processing (`process_next`) claims the oldest pending job, validates
each event against the schema, gives an event without eventID its CBV 2.0 event hash
(trace/epcis_hash.py) as eventID, stores the events a tenant does not have yet (a known
eventID is not stored twice) and appends one event to the tenant's hash chain for the
whole job: kind `epcis_capture`, payload {"capture_id", "events": [{"eventID", "hash"}]}
of the events it stored. With the `rollback` behaviour one invalid event fails the job
and nothing is stored; with `proceed` the valid events are stored and each invalid one
is reported. Events that name the platform's lots join its trail in the same
transaction (trace/epcis_trail.py: steps, shipments, observations; a refusal there
counts as an invalid event), and their entries in the chain event say what they made.
Refusals carry the bindings' exception types (EpcisError and its kinds).

The tenant is the organisation (a row of `cooperatives`, its id the `cooperative_id`)
whose API key captured the events: they are its alone, and only it reads them.

The platform's own trail is published the same way (`publish_own_events`): the EPCIS
export of the lots an organisation's chain names is stored beside its captured events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import unquote
from uuid import UUID

import jsonschema_rs
import psycopg
from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import CoffeetraceError
from coffeetrace.sql import load_queries
from coffeetrace.trace import chain, epcis, epcis_hash, epcis_trail, statements
from coffeetrace.trace import queries as q
from coffeetrace.trace.jsonutil import loads_bounded
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "epcis_store.sql")
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EPCIS_VERSION = "2.0.0"
CBV_VERSION = "2.0.0"
BEHAVIOURS = ("rollback", "proceed")
CHAIN_KIND = "epcis_capture"
INSERT_CHUNK = 1000  # events per insert statement
MAX_ERRORS = 1000  # problems kept per job; beyond, counted in the last one
SCHEMA_FILE = "EPCIS-JSON-Schema.json"  # GS1's, unchanged (shipped beside this module)
OWN_BATCH = 500  # chain events looked at per publishing step

log = logging.getLogger(__name__)


# --- the bindings' exceptions ----------------------------------------------------------
class EpcisError(CoffeetraceError):
    """An EPCIS exception of the REST bindings: an RFC 7807 problem whose type is
    `epcisException:{exception}`. The message says what to fix."""

    status_code = 500
    exception = "ImplementationException"
    title = "A server-side error occurred"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = self.exception

    def problem(self) -> dict[str, Any]:
        """The RFC 7807 body of the bindings."""
        return problem(self.exception, self.title, self.status_code, self.message)


class EpcisValidation(EpcisError):
    status_code = 400
    exception = "ValidationException"
    title = "Invalid EPCIS document"


class CaptureLimitExceeded(EpcisError):
    status_code = 413
    exception = "CaptureLimitExceededException"
    title = "Capture payload too large"


class QueryParameterError(EpcisError):
    status_code = 400
    exception = "QueryParameterException"
    title = "Invalid query parameter"


class NoSuchResource(EpcisError):
    status_code = 404
    exception = "NoSuchNameException"
    title = "Resource not found"


class SecurityError(EpcisError):
    status_code = 401
    exception = "SecurityException"
    title = "Unauthorised request"


class AccessForbidden(SecurityError):
    status_code = 403
    title = "Access to resource forbidden"


class UnsupportedMediaType(EpcisError):
    status_code = 415
    exception = "UnsupportedMediaTypeException"
    title = "Unsupported Media Type"


class NotAcceptable(EpcisError):
    status_code = 406
    exception = "NotAcceptableException"
    title = "Not acceptable"


def problem(exception: str, title: str, status: int, detail: str, **extra: Any) -> Row:
    return {
        "type": f"epcisException:{exception}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


# --- GS1's JSON schema -----------------------------------------------------------------
@cache
def _schema() -> dict[str, Any]:
    text = files("coffeetrace.trace").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def document_validator() -> jsonschema_rs.Draft7Validator:
    """GS1's EPCIS 2.0 JSON schema, formats (date-time, uri) checked."""
    return jsonschema_rs.Draft7Validator(_schema(), validate_formats=True)


@cache
def event_validator() -> jsonschema_rs.Draft7Validator:
    """The schema's definition of an event in a document's eventList."""
    schema = {
        "$ref": "#/definitions/EPCIS-Document-Event",
        "definitions": _schema()["definitions"],
    }
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


def _inlined(node: Any, definitions: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = unquote(node["$ref"].rsplit("/", 1)[1])
            return _inlined(definitions[name], definitions)
        return {k: _inlined(v, definitions) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, definitions) for v in node]
    return node


@cache
def document_schema() -> dict[str, Any]:
    """What `accept` checks of an EPCISDocument, as one JSON schema (for the OpenAPI
    description): GS1's definition of the document, its references inlined, its events
    only objects (the capture job checks each)."""
    definitions = _schema()["definitions"]
    schema: dict[str, Any] = _inlined(definitions["epcisDocument"], definitions)
    schema["properties"]["epcisBody"]["properties"]["eventList"] = {
        "type": "array",
        "items": {"type": "object"},
    }
    return schema


@cache
def _uri_validator() -> jsonschema_rs.Draft7Validator:
    return jsonschema_rs.Draft7Validator({"type": "string", "format": "uri"}, validate_formats=True)


def is_uri(text: str) -> bool:
    """Whether `text` is an absolute URI as the schema's `"format": "uri"` checks it."""
    return bool(_uri_validator().is_valid(text))


@cache
def cbv_terms(field: str) -> tuple[str, ...]:
    """The bare CBV words the schema allows for `field` (bizStep, disposition)."""
    for option in _schema()["definitions"][field]["anyOf"]:
        if "enum" in option:
            return tuple(option["enum"])
    return ()


def _where(path: Sequence[str | int]) -> str:
    field = ""
    for part in path:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or "(the whole object)"


def schema_problems(validator: jsonschema_rs.Draft7Validator, instance: Any) -> list[str]:
    """`field: message` for each way `instance` breaks the schema, the most specific
    first (an error deep in a list before the "not valid under any" of its parent)."""
    try:
        errors = sorted(validator.iter_errors(instance), key=lambda e: -len(e.instance_path))
    except UnicodeEncodeError:  # a lone surrogate (\ud800): JSON allows it, Unicode not
        return ["(a string): holds a lone UTF-16 surrogate, which is not Unicode text"]
    return [f"{_where(e.instance_path)}: {e.message[:300]}" for e in errors]


# --- accepting a document --------------------------------------------------------------
@dataclass(frozen=True)
class CaptureLimits:
    """What one capture may hold (advertised as GS1-EPCIS-Capture-Limit and
    GS1-EPCIS-Capture-File-Size-Limit)."""

    max_events: int
    max_bytes: int
    max_depth: int = 64  # levels of nested arrays and objects in the document


def event_list(document: Mapping[str, Any]) -> list[Any] | None:
    """The events of an EPCISDocument or an EPCISQueryDocument; None when there is no list."""
    body = document.get("epcisBody")
    if not isinstance(body, dict):
        return None
    if document.get("type") == "EPCISQueryDocument":
        results = (body.get("queryResults") or {}).get("resultsBody") or {}
        events = results.get("eventList") if isinstance(results, dict) else None
    else:
        events = body.get("eventList")
    return events if isinstance(events, list) else None


def _without_events(document: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(document)
    body = dict(doc["epcisBody"])
    if doc.get("type") == "EPCISQueryDocument":
        results = dict(body["queryResults"])
        results["resultsBody"] = {**results["resultsBody"], "eventList": []}
        body["queryResults"] = results
    else:
        body["eventList"] = []
    doc["epcisBody"] = body
    return doc


def check_document(document: Any, limits: CaptureLimits) -> list[Any]:
    """The document's events, once the document itself is valid and not too large;
    EpcisValidation or CaptureLimitExceeded otherwise (its events are the job's)."""
    if not isinstance(document, dict):
        raise EpcisValidation("the body must be a JSON object: an EPCISDocument")
    if document.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
        raise EpcisValidation(
            f"type: must be EPCISDocument (or EPCISQueryDocument); got {document.get('type')!r}",
            field="type",
        )
    events = event_list(document)
    if events is None:
        where = (
            "epcisBody.queryResults.resultsBody.eventList"
            if document["type"] == "EPCISQueryDocument"
            else "epcisBody.eventList"
        )
        raise EpcisValidation(f"{where}: the document must hold a list of events", field=where)
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise EpcisValidation(
                f"epcisBody.eventList[{index}]: an event must be a JSON object", field="eventList"
            )
    if len(events) > limits.max_events:
        raise CaptureLimitExceeded(
            f"the document holds {len(events)} events; one capture takes at most"
            f" {limits.max_events} (GS1-EPCIS-Capture-Limit): split it",
            events=len(events),
            max_events=limits.max_events,
        )
    problems = schema_problems(document_validator(), _without_events(document))
    if problems:
        raise EpcisValidation(f"document: {problems[0]}", problems=problems[:20])
    return events


def parse_document(body: bytes, max_depth: int = CaptureLimits.max_depth) -> Any:
    """The JSON of a capture's body; EpcisValidation when it is not JSON or nests deeper
    than `max_depth`."""
    try:
        return loads_bounded(body, max_depth=max_depth)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EpcisValidation(f"the body is not JSON: {exc}") from exc


def accept(
    conn: DbConn,
    cooperative_id: UUID,
    body: bytes,
    behaviour: str,
    limits: CaptureLimits,
    *,
    api_key_id: UUID | None = None,
) -> Row:
    """Check the document (check_document) and store it, as received, as a pending capture
    job of the cooperative; returns the job's row. The caller's commit makes it durable.
    Kept as bytes, not jsonb: JSON allows strings that jsonb cannot hold (U+0000), and
    the job refuses the events holding one rather than the whole capture."""
    if behaviour not in BEHAVIOURS:
        raise EpcisValidation(
            f"GS1-Capture-Error-Behaviour must be rollback or proceed; got {behaviour!r}",
            field="GS1-Capture-Error-Behaviour",
        )
    events = check_document(parse_document(body, limits.max_depth), limits)
    params = dict(
        cooperative_id=cooperative_id,
        api_key_id=api_key_id,
        error_behaviour=behaviour,
        document=body,
        event_count=len(events),
    )
    row = q.one(conn, SQL["epcis_insert_capture"], params)
    assert row is not None  # insert ... returning
    log.info("epcis_capture_accepted capture_id=%s events=%s", row["id"], len(events))
    return row


# --- processing a job ------------------------------------------------------------------
def vocabulary_term(value: Any, kind: str, prefixes: Mapping[str, str]) -> str | None:
    """A bizStep (kind "BizStep") or disposition ("Disp") as stored and queried: a CBV term
    as its bare word, whatever form it came in (`shipping`, `cbv:BizStep-shipping`,
    `urn:epcglobal:cbv:bizstep:shipping`, its web URI); anything else as its full URI."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if ":" not in text:
        return text
    web = epcis_hash.CBV + f"{kind}-"
    urn = {"BizStep": "urn:epcglobal:cbv:bizstep:", "Disp": "urn:epcglobal:cbv:disp:"}[kind]
    expanded = epcis_hash.expand_curie(text, prefixes)
    for start in (web, urn, web.replace("https://", "http://")):
        if expanded.startswith(start):
            return expanded[len(start) :]
    return expanded


def identifier(value: Any, prefixes: Mapping[str, str]) -> str | None:
    """An EPC, class, location or other identifier as stored and queried (canonical)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return epcis_hash.canonical_id(epcis_hash.expand_curie(value.strip(), prefixes))


def _ids(values: Any, prefixes: Mapping[str, str]) -> list[str]:
    out = [identifier(v, prefixes) for v in values or [] if isinstance(v, str)]
    return sorted({x for x in out if x})


def _classes(quantities: Any, prefixes: Mapping[str, str]) -> list[str]:
    out = [identifier(x.get("epcClass"), prefixes) for x in quantities or [] if isinstance(x, dict)]
    return sorted({x for x in out if x})


def _place(value: Any, prefixes: Mapping[str, str]) -> str | None:
    return identifier(value.get("id"), prefixes) if isinstance(value, dict) else None


def event_row(event: Mapping[str, Any], prefixes: Mapping[str, str], event_hash: str) -> Row:
    """The stored row of a valid event: the columns the queries filter on (canonical
    identifiers, bare CBV terms) and the event itself (`event`)."""
    epcs = _ids([*(event.get("epcList") or []), *(event.get("childEPCs") or [])], prefixes)
    inputs = _ids(event.get("inputEPCList"), prefixes)
    outputs = _ids(event.get("outputEPCList"), prefixes)
    parent = identifier(event.get("parentID"), prefixes)
    classes = _classes(
        [*(event.get("quantityList") or []), *(event.get("childQuantityList") or [])], prefixes
    )
    in_classes = _classes(event.get("inputQuantityList"), prefixes)
    out_classes = _classes(event.get("outputQuantityList"), prefixes)
    return {
        "event_id": event["eventID"],
        "event_type": event["type"],
        "event_time": _event_time(event).isoformat(),
        "action": event.get("action"),
        "biz_step": vocabulary_term(event.get("bizStep"), "BizStep", prefixes),
        "disposition": vocabulary_term(event.get("disposition"), "Disp", prefixes),
        "read_point": _place(event.get("readPoint"), prefixes),
        "biz_location": _place(event.get("bizLocation"), prefixes),
        "transformation_id": identifier(event.get("transformationID"), prefixes),
        "parent_id": parent,
        "epcs": epcs,
        "input_epcs": inputs,
        "output_epcs": outputs,
        "any_epcs": sorted({*epcs, *inputs, *outputs, *([parent] if parent else [])}),
        "epc_classes": classes,
        "input_classes": in_classes,
        "output_classes": out_classes,
        "any_classes": sorted({*classes, *in_classes, *out_classes}),
        "hash": event_hash,
        "event": dict(event),
    }


def _event_time(event: Mapping[str, Any]) -> datetime:
    at = epcis_hash.parse_time(str(event.get("eventTime")))
    assert at is not None  # prepare refused the event otherwise
    return at


def _context_list(context: Any) -> list[Any]:
    if context is None:
        return []
    return list(context) if isinstance(context, list) else [context]


def _holds_nul(value: Any) -> bool:
    """Whether a key or string anywhere in `value` holds U+0000 (jsonb cannot)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _describe(index: int, event: Any) -> str:
    if isinstance(event, dict) and isinstance(event.get("eventID"), str):
        return f"event {index} ({event['eventID']})"
    kind = event.get("type") if isinstance(event, dict) else None
    return f"event {index}" + (f" ({kind})" if isinstance(kind, str) else "")


@dataclass
class Prepared:
    """A job's events checked: the rows to store and the problems of the others."""

    rows: list[Row]
    errors: list[Row]


def prepare(document: Mapping[str, Any]) -> Prepared:
    """Validate each event and build its row (eventID from the event hash when it has
    none; recordTime is the server's; the document's namespaces travel with the event as
    its own @context, so that a query answer can still expand its CURIEs)."""
    events = event_list(document) or []
    context = _context_list(document.get("@context"))
    own_namespaces = [c for c in context if c != EPCIS_CONTEXT]
    doc_prefixes = epcis_hash.context_prefixes(context)
    validator = event_validator()
    rows: list[Row] = []
    errors: list[Row] = []
    for index, event in enumerate(events):
        problems = schema_problems(validator, event)
        if not problems and epcis_hash.parse_time(str(event.get("eventTime"))) is None:
            problems = [f"eventTime: {event.get('eventTime')!r} is not an RFC 3339 date-time"]
        if not problems and _holds_nul(event):
            problems = ["(a string): holds U+0000, which the event store cannot keep"]
        if problems:
            detail = f"{_describe(index, event)}: {problems[0]}"
            extra = {"instance": event["eventID"]} if isinstance(event.get("eventID"), str) else {}
            errors.append(problem("ValidationException", "Invalid event", 400, detail, **extra))
            continue
        own = event.get("@context")
        prefixes = {**doc_prefixes, **epcis_hash.context_prefixes(own)} if own else doc_prefixes
        digest = epcis_hash.event_hash(event, prefixes)
        stored = {k: v for k, v in event.items() if k != "recordTime"}
        if "eventID" not in stored:
            stored = {"eventID": digest, **stored}
        if own is None and own_namespaces:
            stored["@context"] = own_namespaces
        rows.append(event_row(stored, prefixes, digest))
    return Prepared(rows, errors)


def _chunks(rows: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def store_events(
    conn: DbConn, cooperative_id: UUID, capture_id: UUID | None, rows: list[Row]
) -> list[Row]:
    """Insert the rows the tenant does not have yet; the stored ones' {"event_id", "hash"}."""
    stored: list[Row] = []
    for chunk in _chunks(rows, INSERT_CHUNK):
        text = json.dumps(chunk, separators=(",", ":"), allow_nan=False)
        params = dict(cooperative_id=cooperative_id, capture_id=capture_id, rows=text)
        stored.extend(q.rows(conn, SQL["epcis_insert_events"], params))
    return stored


def _capped(errors: list[Row]) -> list[Row]:
    if len(errors) <= MAX_ERRORS:
        return errors
    more = len(errors) - MAX_ERRORS + 1
    note = problem("ValidationException", "More invalid events", 400, f"and {more} more")
    return [*errors[: MAX_ERRORS - 1], note]


class _TrailRefused(Exception):
    """The trail refused events of a rollback capture: undo what it stored."""


def _process(conn: DbConn, keys: KeyRing, job: Row, trail: epcis_trail.TrailContext) -> Row:
    """Store what the job's document allows, and let the new events join the trail
    (trace/epcis_trail.py); the outcome's columns."""
    prepared = prepare(json.loads(bytes(job["document"] or b"{}")))
    errors = prepared.errors
    rollback = job["error_behaviour"] == "rollback"
    if errors and rollback:
        return dict(success=False, errors=errors, stored=0, known=0, chain_seq=None)
    coop = job["cooperative_id"]
    try:
        with conn.transaction():  # a savepoint: a rollback capture the trail refuses
            stored = store_events(conn, coop, job["id"], prepared.rows)
            new = {r["event_id"] for r in stored}
            joined = epcis_trail.apply(
                conn, coop, [r for r in prepared.rows if r["event_id"] in new],
                keys=keys, context=trail,
            )  # fmt: skip
            if joined.errors and rollback:
                raise _TrailRefused(joined.errors)
    except _TrailRefused as refused:
        return dict(success=False, errors=refused.args[0], stored=0, known=0, chain_seq=None)
    errors = [*errors, *joined.errors]
    epcis_trail.drop_refused(conn, coop, joined.refused)
    stored = [r for r in stored if r["event_id"] not in set(joined.refused)]
    links = {x.event_id: x for x in joined.links}
    chain_seq = None
    if stored:
        payload = {
            "capture_id": str(job["id"]),
            "events": [
                {"eventID": r["event_id"], "hash": r["hash"]}
                | ({"trail": links[r["event_id"]].recorded()} if r["event_id"] in links else {})
                for r in stored
            ],
        }
        # the lots the events are about: the capture is in their history
        lots = list(dict.fromkeys(lot for x in joined.links for lot in x.lot_ids))
        appended = chain.append_event(
            conn, coop, CHAIN_KIND, lots, datetime.now(UTC), payload, keys=keys
        )
        chain_seq = appended["seq"]
        epcis_trail.record(conn, coop, job["id"], chain_seq, joined.links)
        if lots:
            statements.refresh(conn, keys, coop, lots)  # the organisation's own lots
    known = len(prepared.rows) - len(stored) - len(joined.refused)
    return dict(success=not errors, errors=errors, stored=len(stored), known=known,
                chain_seq=chain_seq)  # fmt: skip


def process_next(
    conn: DbConn, keys: KeyRing, trail: epcis_trail.TrailContext | None = None
) -> UUID | None:
    """Process the oldest pending capture job in the caller's transaction; its id, or None
    when there is none. Commit to make the outcome (and the stored events) durable. A job
    whose processing raises is marked failed (ImplementationException), so that it
    cannot block the ones behind it; the database going away is raised."""
    job = q.one(conn, SQL["epcis_claim_capture"])
    if job is None:
        return None
    try:
        with conn.transaction():  # a savepoint: a failure undoes the job's writes only
            outcome = _process(conn, keys, job, trail or epcis_trail.TrailContext(""))
    except psycopg.OperationalError:
        raise
    except Exception as exc:  # any other failure ends this job, not the worker
        log.exception("epcis_capture_failed capture_id=%s", job["id"])
        detail = f"the capture could not be processed ({type(exc).__name__}); nothing was stored"
        failure = problem("ImplementationException", "Capture failed", 500, detail)
        outcome = dict(success=False, errors=[failure], stored=0, known=0, chain_seq=None)
    q.execute(
        conn,
        SQL["epcis_finish_capture"],
        {**outcome, "id": job["id"], "errors": Jsonb(_capped(outcome["errors"]))},
    )
    log.info(
        "epcis_capture_processed capture_id=%s stored=%s known=%s refused=%s behaviour=%s",
        job["id"],
        outcome["stored"],
        outcome["known"],
        len(outcome["errors"]),
        job["error_behaviour"],
    )
    return UUID(str(job["id"]))


# --- the platform's own events ---------------------------------------------------------
def enrol_own_events(conn: DbConn, cooperative_id: UUID) -> bool:
    """Publish the cooperative's trail from now on (its first EPCIS query calls this);
    whether it was new. Cooperatives that never query pay nothing for it."""
    return q.one(conn, SQL["epcis_own_enrol"], {"cooperative_id": cooperative_id}) is not None


def own_events_due(conn: DbConn) -> list[UUID]:
    """The enrolled cooperatives whose chain grew since their events were last published."""
    return [r["cooperative_id"] for r in q.rows(conn, SQL["epcis_own_due"])]


def publish_own_events(conn: DbConn, cooperative_id: UUID, base_url: str) -> tuple[int, bool]:
    """Store the EPCIS events (trace/epcis.py export_epcis) of the lots the cooperative's
    next chain events name, as it would have captured them (no capture job, no chain
    event: the trail is in the chain already), and move its mark past those chain events.
    Returns (events stored, whether more chain events wait). A plot's sensor summary is
    taken from the export of a cherry lot only: the export names it per exported lot, and
    every later lot would repeat it under another id. Skips (0, False) while another
    process publishes the cooperative."""
    lock = q.one(conn, SQL["epcis_own_lock"], {"cooperative_id": cooperative_id})
    if not lock or not lock["locked"]:
        return 0, False
    changes = q.rows(
        conn, SQL["epcis_own_changes"], {"cooperative_id": cooperative_id, "limit": OWN_BATCH}
    )
    if not changes:
        return 0, False
    lot_ids = list(dict.fromkeys(lot for change in changes for lot in change["lot_ids"] or []))
    cherry = {r["id"] for r in q.rows(conn, SQL["epcis_own_cherry_lots"], {"ids": lot_ids})}
    stored = 0
    for lot_id in lot_ids:
        try:
            with conn.transaction():  # a savepoint: a lot that fails to export is skipped
                prepared = prepare(epcis.export_epcis(conn, lot_id, base_url))
                rows = [
                    r
                    for r in prepared.rows
                    if lot_id in cherry or r["biz_step"] != "sensor_reporting"
                ]
                rows = _not_captured(conn, cooperative_id, rows)
                stored += len(store_events(conn, cooperative_id, None, rows))
        except psycopg.OperationalError:
            raise
        except Exception:  # one lot's export must not stop its cooperative's others
            log.exception("epcis_own_export_failed lot_id=%s", lot_id)
            continue
        for problem_ in prepared.errors:
            log.warning("epcis_own_event_invalid lot_id=%s %s", lot_id, problem_["detail"])
    q.execute(
        conn,
        SQL["epcis_set_own_mark"],
        {"cooperative_id": cooperative_id, "chain_seq": changes[-1]["seq"]},
    )
    log.info(
        "epcis_own_events_published cooperative_id=%s lots=%s stored=%s",
        cooperative_id,
        len(lot_ids),
        stored,
    )
    return stored, len(changes) == OWN_BATCH


def _not_captured(conn: DbConn, cooperative_id: UUID, rows: list[Row]) -> list[Row]:
    """The rows of a lot's export without the steps the cooperative's captured events
    made: the captured event tells them already."""
    ids: dict[str, UUID] = {}
    for r in rows:
        tid = r.get("transformation_id") or ""
        if tid.startswith("urn:uuid:"):
            try:
                ids[r["event_id"]] = UUID(tid.removeprefix("urn:uuid:"))
            except ValueError:
                continue
    made = epcis_trail.made_transformations(conn, cooperative_id, list(set(ids.values())))
    return [r for r in rows if ids.get(r["event_id"]) not in made]


# --- reading jobs ----------------------------------------------------------------------
def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_document(row: Row) -> Row:
    """A job as the bindings' CaptureJob: running, success, captureErrorBehaviour, errors."""
    doc: Row = {
        "captureID": str(row["id"]),
        "createdAt": _iso(row["created_at"]),
        "running": row["state"] == "pending",
        "success": bool(row["success"]),
        "captureErrorBehaviour": row["error_behaviour"],
        "errors": row["errors"] or [],
    }
    if row["finished_at"] is not None:
        doc["finishedAt"] = _iso(row["finished_at"])
    return doc


def job(conn: DbConn, cooperative_id: UUID, capture_id: str) -> Row:
    """The cooperative's capture job `capture_id`; NoSuchResource when it has none."""
    try:
        key = UUID(capture_id)
    except ValueError:
        key = None
    row = (
        q.one(conn, SQL["epcis_capture_job"], {"cooperative_id": cooperative_id, "id": key})
        if key
        else None
    )
    if row is None:
        raise NoSuchResource(f"there is no capture job {capture_id!r}")
    return job_document(row)


def jobs(
    conn: DbConn, cooperative_id: UUID, *, limit: int, before: tuple[datetime, UUID] | None
) -> tuple[list[Row], tuple[datetime, UUID] | None]:
    """A page of the cooperative's jobs, newest first, and the key of the next page."""
    rows = q.rows(
        conn,
        SQL["epcis_capture_jobs"],
        {
            "cooperative_id": cooperative_id,
            "before_time": before[0] if before else None,
            "before_id": before[1] if before else None,
            "limit": limit + 1,
        },
    )
    more = len(rows) > limit
    rows = rows[:limit]
    after = (rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
    return [job_document(r) for r in rows], after
