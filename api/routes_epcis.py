"""EPCIS 2.0 over GS1's REST bindings, under /epcis: capture (POST /capture, 202 and a
capture job to poll), event queries (/events, /events/{eventID}, /eventTypes and the
top-level resources' /events) and the negotiation headers (GS1-EPCIS-Version,
GS1-CBV-Version, the capture limits). Paths, parameters, response codes and exception
types are the bindings' (GS1's openapi.yaml); docs/epcis.md says what is implemented.

A tenant is an organisation (its `cooperative_id`): its API key captures (operator or
admin role) and queries (any role) its own events only. Every refusal on these paths is
an RFC 7807 problem of the bindings (`epcisException:...`), 401 and 403 included; the 413
of a body above COFFEETRACE_EPCIS_CAPTURE_MAX_BYTES comes from api/hardening.py before
the body is read.

Captures are processed by a worker this router's lifespan starts: it processes the
pending jobs at start (those a restart left), each new one as soon as its 202 is sent,
and every COFFEETRACE_EPCIS_CAPTURE_POLL_S those other API processes accepted; after
them, it publishes the new trail of the organisations that query (epcis_capture
publish_own_events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import psycopg
import psycopg_pool
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from psycopg_pool import ConnectionPool
from starlette.convertors import Convertor, register_url_convertor

from coffeetrace import db
from coffeetrace.api.auth import Caller
from coffeetrace.api.deps import Conn, Operator, Reader
from coffeetrace.api.epcis_deliverer import Limits as DeliveryLimits
from coffeetrace.api.epcis_deliverer import run_deliverer
from coffeetrace.db import DbConn
from coffeetrace.errors import Forbidden, Unauthorized, first_line
from coffeetrace.settings import Settings
from coffeetrace.trace import (
    epcis_capture,
    epcis_queries,
    epcis_query,
    epcis_subscriptions,
    epcis_trail,
)
from coffeetrace.trace.epcis_capture import (
    CBV_VERSION,
    EPCIS_VERSION,
    AccessForbidden,
    CaptureLimits,
    EpcisError,
    NotAcceptable,
    QueryParameterError,
    SecurityError,
    UnsupportedMediaType,
)
from coffeetrace.trace.keys import KeyRing

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
JSON_TYPES = ("application/json", "application/ld+json")
OWN_STEPS_PER_ROUND = 10  # publishing steps per cooperative between looks at captures


# --- the bindings' answers -------------------------------------------------------------
def _problem(exc: EpcisError) -> JSONResponse:
    return JSONResponse(exc.problem(), status_code=exc.status_code, media_type=PROBLEM)


def _limits(settings: Settings) -> CaptureLimits:
    return CaptureLimits(
        settings.epcis_capture_max_events,
        settings.epcis_capture_max_bytes,
        settings.epcis_capture_max_depth,
    )


class EpcisRoute(APIRoute):
    """A route of the bindings: domain and key errors as their RFC 7807 problems, and the
    version headers (and, on /capture, the limits) on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        capture = self.path_format.startswith("/epcis/capture")

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except EpcisError as exc:
                response = _problem(exc)
            except Unauthorized as exc:
                response = _problem(SecurityError(exc.message))
            except Forbidden as exc:
                response = _problem(AccessForbidden(exc.message))
            response.headers["GS1-EPCIS-Version"] = EPCIS_VERSION
            response.headers["GS1-CBV-Version"] = CBV_VERSION
            response.headers["GS1-EPC-Format"] = "Never_Translates"
            if capture:
                settings: Settings = request.app.state.settings
                response.headers["GS1-EPCIS-Capture-Limit"] = str(settings.epcis_capture_max_events)
                response.headers["GS1-EPCIS-Capture-File-Size-Limit"] = str(
                    settings.epcis_capture_max_bytes
                )
                response.headers["GS1-Capture-Error-Behaviour"] = "all"
            return response

        return answer


# --- the capture worker ----------------------------------------------------------------
class CaptureWorker:
    """Processes pending capture jobs, one transaction each, in a thread (the domain's
    code is synchronous): at once when woken, else every `poll_s`."""

    def __init__(
        self,
        pool: ConnectionPool[DbConn],
        keys: KeyRing,
        poll_s: float,
        base_url: str,
        trail: epcis_trail.TrailContext | None = None,
    ) -> None:
        self.pool = pool
        self.keys = keys
        self.poll_s = poll_s
        self.base_url = base_url
        self.trail = trail or epcis_trail.TrailContext(base_url)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def drain(self) -> bool:
        """Process jobs until none is pending, then publish the cooperatives' own new
        events (a bounded number of steps, so that captures never wait long); whether
        more of those wait."""
        while True:
            with db.transaction(self.pool) as conn:
                job = epcis_capture.process_next(conn, self.keys, self.trail)
            if job is None:
                break
        with db.transaction(self.pool) as conn:
            due = epcis_capture.own_events_due(conn)
        waiting = False
        for cooperative_id in due:
            for _ in range(OWN_STEPS_PER_ROUND):
                with db.transaction(self.pool) as conn:
                    _, more = epcis_capture.publish_own_events(conn, cooperative_id, self.base_url)
                if not more:
                    break
            waiting = waiting or more
        return waiting

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if await asyncio.to_thread(self.drain):
                    continue  # more own events to publish: the next round at once
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                # the database went away (a restart): the jobs stay pending; next round
                log.warning("epcis_capture_round_failed reason=%s", first_line(exc))
            except Exception:  # a bug must not end the worker: log it, try next round
                log.exception("epcis_capture_round_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan, once its pool is open."""
    settings: Settings = app.state.settings
    trail = epcis_trail.TrailContext(
        settings.public_base_url,
        rules=app.state.rules,
        loss_tolerance_pct=settings.shipment_loss_tolerance_pct,
    )
    worker = CaptureWorker(
        app.state.pool,
        app.state.keys,
        settings.epcis_capture_poll_s,
        settings.public_base_url,
        trail,
    )
    app.state.epcis_worker = worker
    task = asyncio.create_task(worker.run())
    # subscription callbacks (api/epcis_deliverer.py): cursors in the database, so a
    # restart resumes them
    deliverer = asyncio.create_task(
        run_deliverer(app.state.pool, DeliveryLimits.of(settings), settings.epcis_deliver_poll_s)
    )
    try:
        yield
    finally:
        for running in (task, deliverer):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


router = APIRouter(prefix="/epcis", tags=["epcis"], route_class=EpcisRoute, lifespan=lifespan)


# --- OpenAPI: the bindings' parameters and responses -----------------------------------
# Each schema states all a value must be to be taken (so generated "valid" requests are
# valid), and the handlers check no less: a value outside it is a 400.
def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _listed(name: str, description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {**_query(name, description, {"type": "array", "minItems": 1, "items": items}),
            "style": "pipeDelimited", "explode": False}  # fmt: skip


def _word_or_uri(words: tuple[str, ...]) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": list(words)}, URI]}


URI = {"type": "string", "format": "uri"}
TEXT = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
COUNT = {"type": "integer", "minimum": 1, "maximum": epcis_query.MAX_COUNT}
EVENT_TYPE = _word_or_uri(epcis_query.EVENT_TYPES)
BIZ_STEP = _word_or_uri(epcis_query.CBV_FIELDS["BizStep"])
DISPOSITION = _word_or_uri(epcis_query.CBV_FIELDS["Disp"])
PARAMETER_DOCS: dict[str, dict[str, Any]] = {
    "eventType": _listed("eventType", "Event types, e.g. ObjectEvent|TransformationEvent.",
                         EVENT_TYPE),
    "GE_eventTime": _query("GE_eventTime", "eventTime at or after this.", TIME),
    "LT_eventTime": _query("LT_eventTime", "eventTime before this.", TIME),
    "GE_recordTime": _query("GE_recordTime", "recordTime at or after this.", TIME),
    "LT_recordTime": _query("LT_recordTime", "recordTime before this.", TIME),
    "EQ_action": _listed(
        "EQ_action", "action, one of ADD, OBSERVE, DELETE.",
        {"type": "string", "enum": list(epcis_query.ACTIONS)},
    ),
    "EQ_bizStep": _listed("EQ_bizStep", "bizStep: a CBV word (shipping) or a URI.", BIZ_STEP),
    "EQ_disposition": _listed("EQ_disposition", "disposition: a CBV word or a URI.",
                              DISPOSITION),
    "EQ_readPoint": _listed("EQ_readPoint", "readPoint id (SGLN URN or Digital Link).", URI),
    "EQ_bizLocation": _listed("EQ_bizLocation", "bizLocation id.", URI),
    "EQ_transformationID": _listed("EQ_transformationID", "transformationID (a URI).", URI),
    "EQ_eventID": _listed("EQ_eventID", "eventID.", URI),
    "MATCH_epc": _listed("MATCH_epc", "An EPC of epcList or childEPCs.", URI),
    "MATCH_parentID": _listed("MATCH_parentID", "parentID.", URI),
    "MATCH_inputEPC": _listed("MATCH_inputEPC", "An EPC of inputEPCList.", URI),
    "MATCH_outputEPC": _listed("MATCH_outputEPC", "An EPC of outputEPCList.", URI),
    "MATCH_anyEPC": _listed("MATCH_anyEPC", "An EPC anywhere in the event.", URI),
    "MATCH_epcClass": _listed(
        "MATCH_epcClass", "A class of quantityList or childQuantityList.", URI
    ),
    "MATCH_inputEPCClass": _listed("MATCH_inputEPCClass", "A class of inputQuantityList.", URI),
    "MATCH_outputEPCClass": _listed(
        "MATCH_outputEPCClass", "A class of outputQuantityList.", URI
    ),
    "MATCH_anyEPCClass": _listed("MATCH_anyEPCClass", "A class anywhere in the event.", URI),
    "orderBy": _query("orderBy", "Order by eventTime or recordTime.",
                      {"type": "string", "enum": ["eventTime", "recordTime"]}),
    "orderDirection": _query(
        "orderDirection", "ASC or DESC (default DESC when orderBy is given).",
        {"type": "string", "enum": ["ASC", "DESC"]},
    ),
    "eventCountLimit": _query("eventCountLimit", "At most this many events in all.", COUNT),
    "perPage": _query("perPage", "Events per page (default 30; at most the server's limit).",
                      COUNT),
    "nextPageToken": _query("nextPageToken", "The next page: from the Link header.",
                            {"type": "string", "pattern": epcis_query.TOKEN}),
}  # fmt: skip
# the value a top-level resource's path gives, as the parameter it stands for takes it
PATH_VALUE = {"eventType": EVENT_TYPE, "bizStep": BIZ_STEP, "disposition": DISPOSITION}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {**TEXT, "minLength": 1}}  # fmt: skip


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "ValidationException / QueryParameterException: the detail names the field",
        401: "SecurityException: send an API key (Authorization: Bearer or X-API-Key)",
        403: "SecurityException: the key's role does not allow this",
        404: "NoSuchNameException: not in your organisation's events",
        406: "NotAcceptableException: an EPCIS or CBV version other than 2.x",
        413: "CaptureLimitExceededException: more events than GS1-EPCIS-Capture-Limit",
        415: "UnsupportedMediaTypeException: send application/json or application/ld+json",
    }
    schema = {
        "type": "object",
        "required": ["type", "title"],
        "properties": {k: TEXT for k in ("type", "title", "detail", "instance")}
        | {"status": {"type": "integer"}},
    }
    return {
        code: {"description": meaning[code], "content": {PROBLEM: {"schema": schema}}}
        for code in codes
    }


def _answer(description: str, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


QUERY_DOCUMENT = _answer("An EPCISQueryDocument", {"type": "object"})


def _events_parameters(allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    return [PARAMETER_DOCS[name] for name in allowed]


def _without(name: str) -> tuple[str, ...]:
    return tuple(p for p in epcis_query.PARAMETERS if p != name)


# path values may hold anything, slashes and line breaks too (an eventID is a URI, a
# Digital Link has slashes): Starlette's `path` convertor stops at a line break
class AnyText(Convertor[str]):
    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("epcis_value", AnyText())


# --- capture ---------------------------------------------------------------------------
async def _document_body(request: Request) -> bytes:
    """The body of a capture, once its media type is JSON (415 before reading it else)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the EPCISDocument as application/json or application/ld+json; got"
            f" {kind or 'no Content-Type'!r}"
        )
    return await request.body()


DocumentBody = Annotated[bytes, Depends(_document_body)]
VERSION = r"^2(\.[0-9]+)*$"


def _check_versions(request: Request) -> None:
    for header in ("GS1-EPCIS-Version", "GS1-CBV-Version"):
        asked = request.headers.get(header)
        if asked is not None and re.fullmatch(VERSION, asked) is None:
            raise NotAcceptable(f"{header}: this server speaks 2.0 (2.0.0); got {asked!r}")


async def _wake(app: FastAPI) -> None:
    worker: CaptureWorker | None = getattr(app.state, "epcis_worker", None)
    if worker is not None:
        worker.wake()


@router.post(
    "/capture",
    status_code=202,
    summary="Capture an EPCISDocument (asynchronously: poll the Location)",
    response_class=Response,
    responses=_problems(400, 401, 403, 406, 413, 415)
    | {202: {"description": "Accepted; Location: /epcis/capture/{captureID}"}},
    openapi_extra={
        "parameters": [
            _header("GS1-EPCIS-Version", "2.0.0 (others: 406).", {**TEXT, "pattern": VERSION}),
            _header("GS1-CBV-Version", "2.0.0 (others: 406).", {**TEXT, "pattern": VERSION}),
            _header(
                "GS1-Capture-Error-Behaviour",
                "rollback (default): nothing stored if one event is invalid; proceed: the"
                " valid events are stored.",
                {"type": "string", "enum": list(epcis_capture.BEHAVIOURS)},
            ),
        ],
        "requestBody": {
            "required": True,
            "description": "An EPCISDocument (GS1's EPCIS 2.0 JSON schema); its events are"
            " checked by the capture job, each against the schema.",
            "content": {t: {"schema": epcis_capture.document_schema()} for t in JSON_TYPES},
        },
    },
)
def capture(
    request: Request, caller: Operator, conn: Conn, body: DocumentBody, background: BackgroundTasks
) -> Response:
    _check_versions(request)
    behaviour = request.headers.get("GS1-Capture-Error-Behaviour", "rollback")
    job = epcis_capture.accept(
        conn,
        caller.cooperative_id,
        body,
        behaviour,
        _limits(request.app.state.settings),
        api_key_id=caller.key_id,
    )
    background.add_task(_wake, request.app)  # after the response: the job is committed
    return Response(status_code=202, headers={"Location": f"/epcis/capture/{job['id']}"})


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# GET /capture's nextPageToken: the last job's created_at (microseconds since 1970) and id
JOB_TOKEN = r"^(-?[0-9]{1,16})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
JOB_PARAMETERS = [
    _query("perPage", "Jobs per page (default 30).", COUNT),
    _query("nextPageToken", "The next page: from the Link header.",
           {"type": "string", "pattern": JOB_TOKEN}),
]  # fmt: skip
CAPTURE_JOB = {
    "type": "object",
    "required": ["captureID", "createdAt", "running", "success", "captureErrorBehaviour",
                 "errors"],
    "properties": {
        "captureID": TEXT, "createdAt": TIME, "finishedAt": TIME,
        "running": {"type": "boolean"}, "success": {"type": "boolean"},
        "captureErrorBehaviour": {"type": "string", "enum": list(epcis_capture.BEHAVIOURS)},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}  # fmt: skip


def _job_position(token: str | None) -> tuple[datetime, UUID] | None:
    if token is None:
        return None
    m = re.fullmatch(JOB_TOKEN, token)
    if m is None:
        raise QueryParameterError(
            "nextPageToken: not one this server gave (take it from the Link header)",
            parameter="nextPageToken",
        )
    return EPOCH + int(m.group(1)) * MICROSECOND, UUID(m.group(2))


@router.get(
    "/capture",
    summary="The capture jobs of your organisation, newest first",
    response_class=JSONResponse,
    responses=_answer("Capture jobs", {"type": "array", "items": CAPTURE_JOB})
    | _problems(400, 401, 403),
    openapi_extra={"parameters": JOB_PARAMETERS},
)
def capture_jobs(request: Request, caller: Reader, conn: Conn) -> Response:
    params = dict(request.query_params.multi_items())
    for name in params:
        if name not in ("perPage", "nextPageToken"):
            raise QueryParameterError(f"{name}: not a parameter of GET /capture", parameter=name)
    asked = params.get("perPage", str(epcis_query.DEFAULT_PER_PAGE))
    if not asked.isdigit() or not 1 <= int(asked) <= epcis_query.MAX_COUNT:
        raise QueryParameterError(
            f"perPage: must be an integer from 1 to {epcis_query.MAX_COUNT}, got {asked!r}",
            parameter="perPage",
        )
    per_page = min(int(asked), request.app.state.settings.epcis_max_per_page)
    before = _job_position(params.get("nextPageToken"))
    jobs, after = epcis_capture.jobs(conn, caller.cooperative_id, limit=per_page, before=before)
    headers = {}
    if after is not None:
        token = f"{(after[0] - EPOCH) // MICROSECOND}_{after[1]}"
        headers["Link"] = f'<{request.url.include_query_params(nextPageToken=token)}>; rel="next"'
    return JSONResponse(jobs, headers=headers)


@router.get(
    "/capture/{captureID}",
    summary="A capture job: running, success, the errors of each refused event",
    response_class=JSONResponse,
    responses=_answer("The capture job", CAPTURE_JOB) | _problems(401, 403, 404),
    openapi_extra={"parameters": [_path("captureID", "The id from the capture's Location.")]},
)
def capture_job(request: Request, caller: Reader, conn: Conn) -> Response:
    capture_id = request.path_params["captureID"]
    return JSONResponse(epcis_capture.job(conn, caller.cooperative_id, capture_id))


# --- queries ---------------------------------------------------------------------------
def _querier(request: Request, caller: Reader, conn: Conn, background: BackgroundTasks) -> Caller:
    """The caller; at its cooperative's first query, its own trail starts to be published
    as EPCIS events (the worker, woken after the response, does it)."""
    if epcis_capture.enrol_own_events(conn, caller.cooperative_id):
        background.add_task(_wake, request.app)
    return caller


Querier = Annotated[Caller, Depends(_querier)]


def _events_answer(
    request: Request,
    caller: Caller,
    conn: DbConn,
    *,
    allowed: tuple[str, ...] = epcis_query.PARAMETERS,
    implied: dict[str, str] | None = None,
) -> Response:
    query, position = epcis_query.parse(
        request.query_params.multi_items(),
        max_per_page=request.app.state.settings.epcis_max_per_page,
        allowed=allowed,
        implied=implied,
    )
    events, next_token = epcis_query.page(conn, caller.cooperative_id, query, position)
    headers = {}
    if next_token is not None:
        url = request.url.include_query_params(nextPageToken=next_token)
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse(epcis_query.query_document(events), headers=headers)


@router.get(
    "/events",
    summary="Query events (EPCIS query language as query string parameters)",
    response_class=JSONResponse,
    responses=QUERY_DOCUMENT | _problems(400, 401, 403),
    openapi_extra={"parameters": _events_parameters(epcis_query.PARAMETERS)},
)
def events(request: Request, caller: Querier, conn: Conn) -> Response:
    return _events_answer(request, caller, conn)


@router.get(
    "/events/{eventID:epcis_value}",
    summary="One event by its eventID (percent-encode it: ni:///...%3Fver=CBV2.0)",
    response_class=JSONResponse,
    responses=QUERY_DOCUMENT | _problems(401, 403, 404),
    openapi_extra={"parameters": [_path("eventID", "The eventID (a URI), percent-encoded.")]},
)
def event(request: Request, caller: Querier, conn: Conn) -> Response:
    event_id = request.path_params["eventID"]
    return JSONResponse(epcis_query.event(conn, caller.cooperative_id, event_id))


@router.get(
    "/eventTypes",
    summary="The event types of this repository",
    response_class=JSONResponse,
    responses=_answer(
        "A Collection of event types",
        {"type": "object", "required": ["@context", "type", "member"]},
    )
    | _problems(401, 403),
)
def event_types(caller: Reader) -> Response:
    return JSONResponse(epcis_query.event_types_document())


def _resource_events(
    path: str, name: str, implies: str, description: str
) -> Callable[[Request, Caller, DbConn], Response]:
    """GET /{resource}/{value}/events: /events with one parameter set by the path."""
    allowed = _without(implies)
    value_schema = PATH_VALUE.get(name, {**TEXT, "minLength": 1})

    @router.get(
        f"/{path}/{{{name}:epcis_value}}/events",
        summary=f"Events {description}",
        response_class=JSONResponse,
        responses=QUERY_DOCUMENT | _problems(400, 401, 403),
        openapi_extra={
            "parameters": [_path(name, description, value_schema), *_events_parameters(allowed)]
        },
        name=f"epcis_{path}_events",
    )
    def resource_events(request: Request, caller: Querier, conn: Conn) -> Response:
        value = request.path_params[name]
        return _events_answer(request, caller, conn, allowed=allowed, implied={implies: value})

    return resource_events


_resource_events("eventTypes", "eventType", "eventType", "of this event type")
_resource_events("epcs", "epc", "MATCH_anyEPC", "naming this EPC anywhere")
_resource_events("bizSteps", "bizStep", "EQ_bizStep", "of this business step")
_resource_events("bizLocations", "bizLocation", "EQ_bizLocation", "at this business location")
_resource_events("readPoints", "readPoint", "EQ_readPoint", "at this read point")
_resource_events("dispositions", "disposition", "EQ_disposition", "of this disposition")


# --- named queries ---------------------------------------------------------------------
async def _json_body(request: Request) -> Any:
    """A JSON request body (415 for another media type, 400 when it is not JSON)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES:
        raise UnsupportedMediaType(f"send application/json; got {kind or 'no Content-Type'!r}")
    return epcis_capture.parse_document(await request.body())


JsonBody = Annotated[Any, Depends(_json_body)]
QUERY_NAME = _path("queryName", "The query's name.", {**TEXT, "pattern": epcis_queries.NAME})
NAMED_QUERY = {
    "type": "object",
    "required": ["name", "query"],
    "properties": {"name": TEXT, "query": {"type": "object"}},
}
NAME_TOKEN = {"type": "string", "minLength": 1}
NO_PIPE = {"type": "string", "pattern": r"^[^|]*$"}  # '|' separates a list's values


def _stored_parameter(name: str) -> dict[str, Any]:
    """What a named query takes for `name`: what GET /events takes, as JSON (a list as an
    array of values, none holding '|')."""
    schema = dict(PARAMETER_DOCS[name]["schema"])
    if schema.get("type") == "array":
        schema["items"] = {"allOf": [schema["items"], NO_PIPE]}
    return schema


# the query: GS1's query language, restricted to what GET /events implements (the body
# is also checked against GS1's query-schema.json itself)
STORED_QUERY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {name: _stored_parameter(name) for name in epcis_queries.QUERY_PARAMETERS},
}
JSON_BODY = {"required": True, "content": {"application/json": {"schema": {
    **NAMED_QUERY,
    "properties": {"name": {**TEXT, "pattern": epcis_queries.NAME}, "query": STORED_QUERY},
    "additionalProperties": False,
}}}}  # fmt: skip


def _per_page(text: str | None, settings: Settings) -> int:
    asked = text if text is not None else str(epcis_query.DEFAULT_PER_PAGE)
    if not asked.isdigit() or not 1 <= int(asked) <= epcis_query.MAX_COUNT:
        raise QueryParameterError(
            f"perPage: must be an integer from 1 to {epcis_query.MAX_COUNT}, got {asked!r}",
            parameter="perPage",
        )
    return min(int(asked), settings.epcis_max_per_page)


@router.post(
    "/queries",
    status_code=201,
    summary="A new named query (GS1's query language, query-schema.json)",
    response_class=Response,
    responses=_problems(400, 401, 403, 406, 415)
    | {201: {"description": "Created; Location: /epcis/queries/{name}"},
       409: {"description": "ResourceAlreadyExistsException: the name is taken",
             "content": {PROBLEM: {"schema": {"type": "object"}}}}},
    openapi_extra={
        "parameters": [
            _header("GS1-EPCIS-Version", "2.0.0 (others: 406).", {**TEXT, "pattern": VERSION}),
            _header("GS1-CBV-Version", "2.0.0 (others: 406).", {**TEXT, "pattern": VERSION}),
        ],
        "requestBody": JSON_BODY,
    },
)  # fmt: skip
def create_query(request: Request, caller: Operator, conn: Conn, body: JsonBody) -> Response:
    _check_versions(request)
    settings: Settings = request.app.state.settings
    created = epcis_queries.create(conn, caller.cooperative_id, body, settings.epcis_max_per_page)
    location = f"/epcis/queries/{created['name']}"
    return JSONResponse(created, status_code=201, headers={"Location": location})


@router.get(
    "/queries",
    summary="Your organisation's named queries, by name",
    response_class=JSONResponse,
    responses=_answer("Named queries", {"type": "array", "items": NAMED_QUERY})
    | _problems(400, 401, 403),
    openapi_extra={"parameters": [
        _query("perPage", "Queries per page (default 30).", COUNT),
        _query("nextPageToken", "The next page: from the Link header.", NAME_TOKEN),
    ]},
)  # fmt: skip
def list_queries(request: Request, caller: Reader, conn: Conn) -> Response:
    params = dict(request.query_params.multi_items())
    for name in params:
        if name not in ("perPage", "nextPageToken"):
            raise QueryParameterError(f"{name}: not a parameter of GET /queries", parameter=name)
    per_page = _per_page(params.get("perPage"), request.app.state.settings)
    token = params.get("nextPageToken")
    if token == "":  # a query's name is never empty: not a token this server gave
        raise QueryParameterError(
            "nextPageToken: not one this server gave (take it from the Link header)",
            parameter="nextPageToken",
        )
    found, after = epcis_queries.listing(conn, caller.cooperative_id, limit=per_page, after=token)
    headers = {}
    if after is not None:
        headers["Link"] = f'<{request.url.include_query_params(nextPageToken=after)}>; rel="next"'
    return JSONResponse(found, headers=headers)


@router.get(
    "/queries/{queryName}",
    summary="A named query's definition",
    response_class=JSONResponse,
    responses=_answer("The named query", NAMED_QUERY) | _problems(401, 403, 404),
    openapi_extra={"parameters": [QUERY_NAME]},
)
def get_query(request: Request, caller: Reader, conn: Conn) -> Response:
    row = epcis_queries.get(conn, caller.cooperative_id, request.path_params["queryName"])
    return JSONResponse(epcis_queries.document(row))


@router.delete(
    "/queries/{queryName}",
    status_code=204,
    summary="Remove a named query and its subscriptions",
    response_class=Response,
    responses=_problems(401, 403, 404) | {204: {"description": "Removed"}},
    openapi_extra={"parameters": [QUERY_NAME]},
)
def delete_query(request: Request, caller: Operator, conn: Conn) -> Response:
    epcis_queries.delete(conn, caller.cooperative_id, request.path_params["queryName"])
    return Response(status_code=204)


@router.get(
    "/queries/{queryName}/events",
    summary="The events of a named query (paged like GET /events)",
    response_class=JSONResponse,
    responses=QUERY_DOCUMENT | _problems(400, 401, 403, 404),
    openapi_extra={"parameters": [
        QUERY_NAME,
        PARAMETER_DOCS["perPage"],
        PARAMETER_DOCS["nextPageToken"],
    ]},
)  # fmt: skip
def query_events(request: Request, caller: Querier, conn: Conn) -> Response:
    name = request.path_params["queryName"]
    stored = epcis_queries.get(conn, caller.cooperative_id, name)
    query, position = epcis_queries.event_query(
        stored["query"],
        request.query_params.multi_items(),
        request.app.state.settings.epcis_max_per_page,
    )
    events, next_token = epcis_query.page(conn, caller.cooperative_id, query, position)
    headers = {}
    if next_token is not None:
        url = request.url.include_query_params(nextPageToken=next_token)
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse(epcis_query.query_document(events, query_name=name), headers=headers)


# --- subscriptions ---------------------------------------------------------------------
SCHEDULE_FIELD = {"type": "string", "pattern": r"^\s*(\d{1,2}|\[\d{1,2}-\d{1,2}\])"
                  r"(\s*,\s*(\d{1,2}|\[\d{1,2}-\d{1,2}\]))*\s*$"}  # fmt: skip
SUBSCRIPTION_IN = {
    "type": "object",
    "required": ["dest", "signatureToken"],
    "properties": {
        "dest": URI,
        "signatureToken": {"type": "string", "minLength": 16, "maxLength": 1000},
        "stream": {"type": "boolean", "enum": [True]},
        "schedule": {"type": "object", "minProperties": 1, "additionalProperties": False,
                     "properties": {f: SCHEDULE_FIELD for f in epcis_subscriptions.FIELDS}},
        "reportIfEmpty": {"type": "boolean"},
        "initialRecordTime": TIME,
    },
}  # fmt: skip
SUBSCRIPTION = {
    "type": "object",
    "required": ["subscriptionID", "dest", "createdAt", "status"],
    "properties": {
        "subscriptionID": TEXT, "queryName": TEXT, "dest": TEXT, "createdAt": TIME,
        "initialRecordTime": TIME, "minRecordTime": TIME, "lastNotifiedAt": TIME,
        "stream": {"type": "boolean"}, "schedule": {"type": "object"},
        "reportIfEmpty": {"type": "boolean"}, "nextRunAt": TIME,
        "status": {"type": "string", "enum": ["active", "failing"]},
        "attempts": {"type": "integer"}, "lastError": TEXT,
    },
}  # fmt: skip
SUBSCRIPTION_ID = _path("subscriptionID", "The id from the subscription's Location.")


def _subscription_location(row: Any) -> str:
    return f"/epcis/queries/{row['query_name']}/subscriptions/{row['id']}"


@router.post(
    "/queries/{queryName}/subscriptions",
    status_code=201,
    summary="Subscribe a webhook to a named query (stream: true, or a schedule)",
    response_class=JSONResponse,
    responses=_problems(400, 401, 403, 404, 406, 415)
    | {201: {"description": "Subscribed; Location: the subscription",
             "content": {"application/json": {"schema": SUBSCRIPTION}}}},
    openapi_extra={
        "parameters": [
            QUERY_NAME,
            _header("GS1-EPCIS-Version", "2.0.0 (others: 406).", {**TEXT, "pattern": VERSION}),
        ],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": SUBSCRIPTION_IN}}},
    },
)  # fmt: skip
def subscribe(request: Request, caller: Operator, conn: Conn, body: JsonBody) -> Response:
    _check_versions(request)
    settings: Settings = request.app.state.settings
    row = epcis_subscriptions.create(
        conn, caller.cooperative_id, request.path_params["queryName"], body,
        allow_private=settings.epcis_webhook_allow_private,
    )  # fmt: skip
    return JSONResponse(
        epcis_subscriptions.document(row),
        status_code=201,
        headers={"Location": _subscription_location(row)},
    )


@router.get(
    "/queries/{queryName}/subscriptions",
    summary="The subscriptions of a named query, with their delivery state",
    response_class=JSONResponse,
    responses=_answer("Subscriptions", {"type": "array", "items": SUBSCRIPTION})
    | _problems(401, 403, 404),
    openapi_extra={"parameters": [QUERY_NAME]},
)
def subscriptions(request: Request, caller: Reader, conn: Conn) -> Response:
    rows = epcis_subscriptions.listing(
        conn, caller.cooperative_id, request.path_params["queryName"]
    )
    return JSONResponse([epcis_subscriptions.document(r) for r in rows])


@router.get(
    "/queries/{queryName}/subscriptions/{subscriptionID}",
    summary="A subscription: status (active, failing), lastError, lastNotifiedAt",
    response_class=JSONResponse,
    responses=_answer("The subscription", SUBSCRIPTION) | _problems(401, 403, 404),
    openapi_extra={"parameters": [QUERY_NAME, SUBSCRIPTION_ID]},
)
def subscription(request: Request, caller: Reader, conn: Conn) -> Response:
    params = request.path_params
    row = epcis_subscriptions.get(
        conn, caller.cooperative_id, params["queryName"], params["subscriptionID"]
    )
    return JSONResponse(epcis_subscriptions.document(row))


@router.delete(
    "/queries/{queryName}/subscriptions/{subscriptionID}",
    status_code=204,
    summary="Unsubscribe",
    response_class=Response,
    responses=_problems(401, 403, 404) | {204: {"description": "Unsubscribed"}},
    openapi_extra={"parameters": [QUERY_NAME, SUBSCRIPTION_ID]},
)
def unsubscribe(request: Request, caller: Operator, conn: Conn) -> Response:
    params = request.path_params
    epcis_subscriptions.delete(
        conn, caller.cooperative_id, params["queryName"], params["subscriptionID"]
    )
    return Response(status_code=204)
