"""The `ct:` vocabulary served at its namespace, {public_base_url}/voc/.

The EPCIS exports bind the prefix "ct" to that IRI; here every term they use answers
with its definition (trace/vocabulary.py): the whole vocabulary at /voc/, one term at
/voc/{term}. JSON-LD by default; an HTML page when the client prefers text/html.
No database work and nothing of any cooperative's data.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Path, Request, Response

from coffeetrace.api.render import environment
from coffeetrace.api.schemas import error_responses
from coffeetrace.errors import NotFound
from coffeetrace.trace import vocabulary

router = APIRouter(tags=["public"])
JSON_LD = "application/ld+json"
HTML = "text/html; charset=utf-8"
CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The definition, as JSON-LD or (Accept: text/html) a page",
        "content": {JSON_LD: {"schema": {"type": "object"}}, "text/html": {}},
    }
}
MAX_AGE_S = 3600
TermName = Annotated[str, Path(min_length=1, max_length=120, description="A ct: term")]


def _wants_html(request: Request) -> bool:
    """HTML when the client lists text/html ahead of (or without) any JSON type."""
    accept = request.headers.get("accept", "").lower()
    html_at = accept.find("text/html")
    if html_at < 0:
        return False
    json_at = [i for i in (accept.find("application/ld+json"), accept.find("json")) if i >= 0]
    return not json_at or html_at < min(json_at)


def _terms(request: Request) -> list[vocabulary.Term]:
    # configured steps too: their bizStep IRIs are in the exports
    return vocabulary.terms(request.app.state.rules.step_max_yield)


def _base(request: Request) -> str:
    return str(request.app.state.settings.public_base_url)


def _answer(request: Request, document: dict[str, Any], page: bytes) -> Response:
    headers = {"Cache-Control": f"public, max-age={MAX_AGE_S}", "Vary": "Accept"}
    if _wants_html(request):
        return Response(page, media_type=HTML, headers=headers)
    body = json.dumps(document, ensure_ascii=False, indent=1).encode()
    return Response(body, media_type=JSON_LD, headers=headers)


def _page(base: str, groups: list[tuple[str, list[vocabulary.Term]]], title: str) -> bytes:
    return (
        environment()
        .get_template("vocabulary.html")
        .render(
            title=title,
            comment="Extension terms of coffeetrace's EPCIS 2.0 exports: what each ct: term"
            " means, its type and unit.",
            namespace=vocabulary.namespace(base),
            groups=groups,
        )
        .encode()
    )


@router.get(
    vocabulary.PATH,
    summary="The ct: vocabulary of the EPCIS exports (JSON-LD, or HTML)",
    responses=CONTENT,
)
def vocabulary_index(request: Request) -> Response:
    base, terms = _base(request), _terms(request)
    measurements = set(vocabulary.MEASUREMENTS)
    groups = [
        ("Properties", [t for t in terms if t in vocabulary.PROPERTIES]),
        ("Measurements of processing steps", [t for t in terms if t in measurements]),
        ("Values: business steps and methods", [t for t in terms if t.kind != "rdf:Property"]),
    ]
    document = vocabulary.vocabulary_document(base, request.app.state.rules.step_max_yield)
    return _answer(request, document, _page(base, groups, "coffeetrace vocabulary (ct:)"))


@router.get(
    vocabulary.PATH + "{term:path}",
    summary="One term of the ct: vocabulary (JSON-LD, or HTML)",
    responses={**CONTENT, **error_responses(404, 422)},
)
def vocabulary_term(term: TermName, request: Request) -> Response:
    # the path arrives decoded: a configured step's name may have needed quoting
    found = next((t for t in _terms(request) if unquote(t.name) == term), None)
    if found is None:
        raise NotFound(
            f"the ct: vocabulary has no term {term!r}; every term is listed at {vocabulary.PATH}",
            term=term,
        )
    base = _base(request)
    document = {"@context": vocabulary.context(base), **vocabulary.term_node(found)}
    return _answer(request, document, _page(base, [("Term", [found])], f"ct:{found.name}"))
