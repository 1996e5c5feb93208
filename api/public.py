"""Public pages and the GS1 Digital Link resolver: what a buyer's phone reaches from a QR.

No authentication and no personal data. Lot pages are negotiated (HTML for browsers,
the signed provenance JSON for `Accept: application/json`), in Vietnamese or English,
served with ETag and Cache-Control, and kept rendered in memory (api/cache.py) so that
repeated scans of a lot cost no database work. Handlers are `async` only so that a
cache hit never waits for a worker thread; all database work runs in the threadpool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, LiteralString
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse

from coffeetrace import db
from coffeetrace.api import i18n, pagedata, qr, ratelimit, render, resolver
from coffeetrace.api.cache import Entry, PageCache
from coffeetrace.api.schemas import Error, error_responses
from coffeetrace.db import DbConn
from coffeetrace.errors import CoffeetraceError, NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis, keys

router = APIRouter(tags=["public"], responses=error_responses(404, 422, 429))
PublicId = Annotated[str, Path(min_length=1, max_length=64, description="Random 128-bit public id")]
Lang = Annotated[str | None, Query(pattern="^(vi|en)$", description="Page language")]
LinkType = Annotated[
    str | None,
    Query(
        pattern="^(linkset|all)$",
        description="`linkset` (or `all`): the lot's links as an RFC 9264 linkset",
    ),
]
HTML = "text/html; charset=utf-8"
JSON = "application/json"


SQL = load_queries("coffeetrace.api", "page.sql")


def wants_json(request: Request) -> bool:
    """JSON when the client asks for it ahead of (or without) HTML."""
    accept = request.headers.get("accept", "").lower()
    if "application/json" not in accept:
        return False
    html_at = accept.find("text/html")
    return html_at < 0 or accept.find("application/json") < html_at


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(jsonable_encoder(doc), ensure_ascii=False, separators=(",", ":")).encode()


def _base(request: Request) -> str:
    return str(request.app.state.settings.public_base_url).rstrip("/")


def lot_link(base: str, lot: dict[str, Any]) -> str:
    """The `Link:` header of a lot's page and provenance JSON: the one its GS1 Digital
    Link answers with, anchored at the URI printed on the lot's label (qr.lot_uri: the
    Digital Link when the lot's product has a GTIN, else /l/{public_id}), where the
    linkset it points at is served."""
    return resolver.link_header(qr.lot_uri(base, lot), base, lot["public_id"])


def _respond(request: Request, entry: Entry, extra: dict[str, str] | None = None) -> Response:
    settings = request.app.state.settings
    control = f"public, max-age={settings.page_max_age_s}"
    if settings.page_stale_while_revalidate_s:
        control += f", stale-while-revalidate={settings.page_stale_while_revalidate_s}"
    headers = {
        "ETag": entry.etag,
        "Cache-Control": control,
        "Vary": "Accept, Accept-Language",
        **entry.headers,
        **(extra or {}),
    }
    match = request.headers.get("if-none-match")
    if match and (match.strip() == "*" or entry.etag in (m.strip() for m in match.split(","))):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type=entry.media_type, headers=headers)


def _problem(
    request: Request,
    status: int,
    exc: CoffeetraceError,
    heading: str,
    text: str | None,
    lang: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one error format for API clients; a friendly page for browsers."""
    if wants_json(request) or "text/html" not in request.headers.get("accept", "text/html"):
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)
    chosen = i18n.negotiate(lang, request.headers.get("accept-language"))
    body = render.message_html(chosen, heading, text, exc.message if status == 400 else None)
    return Response(
        body,
        status_code=status,
        media_type=HTML,
        headers={"Cache-Control": "no-store", "Content-Language": chosen, **(headers or {})},
    )


def _limited(request: Request, exc: ratelimit.RateLimited, lang: str | None) -> Response:
    retry = str(exc.details["retry_after_s"])
    return _problem(
        request, 429, exc, "too_many_title", "too_many_text", lang, {"Retry-After": retry}
    )


def _not_found(request: Request, what: str, lang: str | None) -> Response:
    return _problem(
        request,
        404,
        NotFound(f"no {what} has this code"),
        "not_found_title",
        "not_found_text",
        lang,
    )


Renderer = Callable[[DbConn, Any], tuple[bytes, str, dict[str, str]]]


async def _serve(
    request: Request,
    key: tuple[str, ...],
    head_query: LiteralString,
    public_id: str,
    renderer: Renderer,
    extra: dict[str, str] | None = None,
    lang: str | None = None,
) -> Response | None:
    """Serve `key` from the cache, or revalidate it against its head, or render it.
    None when the public id is unknown. A page not in the cache costs the client a
    lookup of its rate limit (a 429 when it has none left); a cached one costs nothing."""
    cache: PageCache = request.app.state.page_cache
    entry, check = cache.lookup(key)
    if check:
        due = entry
        if due is None:
            try:
                ratelimit.check(request)
            except ratelimit.RateLimited as exc:
                return _limited(request, exc, lang)
        try:
            entry = await run_in_threadpool(_load, request, key, head_query, public_id, renderer)
        finally:
            cache.done(due)
        if entry is None and due is None:
            ratelimit.missed(request)
    if entry is None:
        return None
    return _respond(request, entry, extra)


def _load(
    request: Request,
    key: tuple[str, ...],
    head_query: LiteralString,
    public_id: str,
    renderer: Renderer,
) -> Entry | None:
    cache: PageCache = request.app.state.page_cache
    with cache.key_lock(key):
        with db.transaction(request.app.state.pool) as conn:
            row = conn.execute(head_query, {"public_id": public_id}).fetchone()
            if row is None:
                return None
            hit = cache.revalidate(key, row["head"])
            if hit is not None:
                return hit
            body, media_type, headers = renderer(conn, row["id"])
        return cache.put(
            key, Entry(body=body, media_type=media_type, head=row["head"], headers=headers)
        )


async def serve_lot(
    request: Request, public_id: str, lang: str | None, extra: dict[str, str] | None = None
) -> Response:
    ring: keys.KeyRing = request.app.state.keys
    base = _base(request)
    if wants_json(request):

        def provenance_json(conn: DbConn, lot_id: Any) -> tuple[bytes, str, dict]:
            link = lot_link(base, pagedata.lot_row(conn, lot_id))
            signed = pagedata.provenance_json(conn, lot_id)
            return _json_bytes(signed), JSON, {"Link": link}

        key: tuple[str, ...] = ("lot", public_id, "json")
        renderer: Renderer = provenance_json
    else:
        chosen = i18n.negotiate(lang, request.headers.get("accept-language"))
        verify_url = f"/l/{public_id}/verify"

        settings = request.app.state.settings

        def lot_html(conn: DbConn, lot_id: Any) -> tuple[bytes, str, dict]:
            data = pagedata.lot_page(
                conn,
                lot_id,
                ring,
                verify_max_age_s=settings.page_verify_max_age_s,
                dds_environment=settings.eudr_environment,
            )
            headers = {"Content-Language": chosen, "Link": lot_link(base, data["lot"])}
            return render.lot_html(data, chosen, verify_url), HTML, headers

        key, renderer = ("lot", public_id, "html", chosen), lot_html
    response = await _serve(request, key, SQL["lot_head"], public_id, renderer, extra, lang)
    return response or _not_found(request, "lot", lang)


async def serve_linkset(request: Request, public_id: str) -> Response:
    """The lot's linkset, anchored where lot_link anchors its Link header."""
    base = _base(request)

    def linkset_json(conn: DbConn, lot_id: Any) -> tuple[bytes, str, dict]:
        lot = pagedata.lot_row(conn, lot_id)
        body = resolver.linkset(qr.lot_uri(base, lot), base, public_id)
        return _json_bytes(body), resolver.LINKSET_TYPE, {"Link": lot_link(base, lot)}

    key = ("linkset", public_id)
    response = await _serve(request, key, SQL["lot_head"], public_id, linkset_json)
    return response or _not_found(request, "lot", None)


@router.get(
    "/l/{public_id}",
    summary="Lot provenance page (HTML), signed provenance JSON, or the lot's linkset",
    description="Answers with a `Link` header announcing the lot's links, as its GS1"
    " Digital Link does: for a lot without a GTIN, the linkset is `?linkType=linkset` here.",
    responses={
        200: {"content": {"text/html": {}, "application/json": {}, resolver.LINKSET_TYPE: {}}},
        304: {"description": "Not modified (ETag)"},
        404: {"description": "Unknown lot: a friendly page"},
    },
)
async def lot_page(
    public_id: PublicId,
    request: Request,
    lang: Lang = None,
    linkType: LinkType = None,  # noqa: N803
) -> Response:
    if linkType is not None:
        return await serve_linkset(request, public_id)
    return await serve_lot(request, public_id, lang)


@router.get(
    "/l/{public_id}/epcis",
    summary="The lot's EPCIS 2.0 document",
    responses={200: {"content": {"application/ld+json": {}}}, 404: {}},
)
async def lot_epcis(public_id: PublicId, request: Request) -> Response:
    base = _base(request)

    def epcis_json(conn: DbConn, lot_id: Any) -> tuple[bytes, str, dict]:
        return _json_bytes(epcis.export_epcis(conn, lot_id, base)), "application/ld+json", {}

    response = await _serve(request, ("epcis", public_id), SQL["lot_head"], public_id, epcis_json)
    return response or _not_found(request, "lot", None)


@router.get(
    "/l/{public_id}/verify",
    summary="Check the lot against the hash chain and signature",
    responses={404: {}},
)
async def lot_verify(public_id: PublicId, request: Request) -> Response:
    ring: keys.KeyRing = request.app.state.keys

    def verify_json(conn: DbConn, lot_id: Any) -> tuple[bytes, str, dict]:
        story = pagedata.lot_story(conn, lot_id, ring)
        signed, checked = story["signed"], story["verification"]
        statement_ok = signed["signature"] is not None and not any(
            p["kind"] == "statement" for p in checked["problems"]
        )
        body = {
            "lot": {"public_id": public_id, "page": f"/l/{public_id}"},
            "ok": bool(checked.get("ok")),
            "chain": checked,
            "signature": {**(signed["signature"] or {}), "valid": statement_ok},
            "document": signed["document"],
            "checkpoint": signed["checkpoint"],
            "inclusion": signed["inclusion"],
            "public_keys": "/.well-known/coffeetrace-keys",
        }
        return _json_bytes(body), JSON, {}

    # cached by the lot's chain head like its page (and re-run at the latest after
    # COFFEETRACE_PAGE_CACHE_TTL_S); a verification not in the cache costs the client
    # its rate limit
    response = await _serve(request, ("verify", public_id), SQL["lot_head"], public_id, verify_json)
    return response or _not_found(request, "lot", None)


@router.get(
    "/t/{public_id}",
    summary="Tree page: cultivar, age, plot, harvests, lots",
    responses={200: {"content": {"text/html": {}}}, 404: {}},
)
async def tree_page(public_id: PublicId, request: Request, lang: Lang = None) -> Response:
    chosen = i18n.negotiate(lang, request.headers.get("accept-language"))

    def tree_html(conn: DbConn, _tree_id: Any) -> tuple[bytes, str, dict]:
        data = pagedata.tree_page(conn, public_id)
        if data is None:
            raise NotFound("tree not found")
        return render.tree_html(data, chosen), HTML, {"Content-Language": chosen}

    response = await _serve(
        request, ("tree", public_id, chosen), SQL["tree_head"], public_id, tree_html, lang=lang
    )
    return response or _not_found(request, "tree", lang)


@router.get(
    "/01/{gtin}/10/{lot}",
    summary="GS1 Digital Link resolver for a lot",
    responses={
        200: {"content": {"text/html": {}, "application/json": {}, resolver.LINKSET_TYPE: {}}},
        307: {"description": "Redirect to the requested link type"},
        400: {"description": "The GTIN or lot is not valid (message says why)", "model": Error},
        404: {"description": "Unknown lot: a friendly page"},
        429: {"description": "Too many lookups from this address (Retry-After)", "model": Error},
    },
)
async def digital_link(
    request: Request,
    gtin: resolver.GtinPath,
    lot: resolver.LotPath,
    linkType: Annotated[str | None, Query(max_length=60)] = None,  # noqa: N803
    lang: Lang = None,
) -> Response:
    memo = request.app.state.link_memo
    base = _base(request)
    found = memo.get((gtin, lot))  # only valid, known links are remembered
    if found is not None:
        gtin14, public_id, anchor, link = found
    else:
        try:
            gtin14 = resolver.check_digital_link(gtin, lot)
        except CoffeetraceError as exc:
            return _problem(request, 400, exc, "bad_code_title", None, lang)
        try:
            ratelimit.check(request)  # a link not remembered costs a lookup
        except ratelimit.RateLimited as exc:
            return _limited(request, exc, lang)

        def lookup() -> str | None:
            with request.app.state.pool.connection() as conn:
                row = conn.execute(
                    SQL["lot_public_id_by_gtin_and_code"], {"gtin": gtin14, "code": lot}
                ).fetchone()
            return row["public_id"] if row else None

        public_id = await run_in_threadpool(lookup)
        if public_id is None:
            ratelimit.missed(request)  # a guessed lot code costs more than a real one
            return _not_found(request, "lot", lang)
        anchor = f"{base}/01/{gtin14}/10/{quote(lot, safe='')}"
        link = resolver.link_header(anchor, base, public_id)
        memo.put((gtin, lot), (gtin14, public_id, anchor, link))
    if linkType in ("linkset", "all"):
        return JSONResponse(
            resolver.linkset(anchor, base, public_id),
            media_type=resolver.LINKSET_TYPE,
            headers={"Link": link, "Cache-Control": "public, max-age=3600"},
        )
    if linkType is None:
        # The default link is served in place (no redirect): one round trip less on a
        # weak rural connection. The Link header still announces every link type.
        return await serve_lot(request, public_id, lang, {"Link": link})
    offered = resolver.links("", public_id)
    target = offered.get(linkType, offered["gs1:pip"])["href"]
    if lang and target.endswith(public_id):
        target += f"?lang={lang}"
    return RedirectResponse(target, status_code=307, headers={"Link": link})


@router.get(
    "/.well-known/coffeetrace-keys",
    summary="Every cooperative's public signing keys with their validity",
)
def public_keys(request: Request) -> dict[str, Any]:
    ratelimit.check(request)  # anonymous, and it reads every cooperative's key file
    ring: keys.KeyRing = request.app.state.keys
    with db.transaction(request.app.state.pool) as conn:
        coops = conn.execute(SQL["cooperatives_public"]).fetchall()
    return {
        "algorithm": keys.ALGORITHM,
        "signed": "domain + newline + canonical JSON (sorted keys, no whitespace, UTF-8);"
        " domains: coffeetrace.provenance.v1 (lot statements), coffeetrace.checkpoint.v1"
        " (checkpoint bodies), coffeetrace.event.v1 (event hash, hex)",
        "cooperatives": [
            {"code": c["code"], "id": str(c["id"]), "keys": ring.public_keys(c["id"])}
            for c in coops
        ],
    }


@router.get("/.well-known/gs1resolver", summary="GS1 resolver description")
def resolver_description(request: Request) -> dict[str, Any]:
    base = _base(request)
    return {
        "name": "coffeetrace",
        "resolverRoot": base,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [
            {"namespace": resolver.GS1_VOC, "prefix": "gs1:", "linkType": t.removeprefix("gs1:")}
            for t in resolver.links(base, "x")
        ],
        "linkTypeDefaultCanBeLinkset": False,
        "qualifierPaths": ["/01/{gtin}/10/{lot}"],
    }
