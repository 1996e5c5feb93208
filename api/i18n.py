"""Vietnamese and English texts of the public pages, and choosing between them."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


@cache
def texts(lang: str) -> dict[str, Any]:
    return json.loads(
        files("coffeetrace.api").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8")
    )


def negotiate(query_lang: str | None, accept_language: str | None) -> str:
    """`?lang=` wins; then the Accept-Language entry with the highest q; else Vietnamese."""
    if query_lang in LANGS:
        return query_lang
    best, best_q = DEFAULT_LANG, -1.0
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        # earlier entries win ties, as browsers list preferences in order
        if q > best_q or (q == best_q and position == 0):
            best, best_q = primary, q
    return best
