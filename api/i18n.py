"""Vietnamese and English texts of the public pages, and choosing between them.

Free text a cooperative enters (a measurement such as the drying method, a certificate's
name) may be given in both languages as a JSON object {"vi": ..., "en": ...}; `variant`
picks the one for the page, or the other language's, marked as such, when only that one
was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from babel import Locale

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


@dataclass(frozen=True)
class Variant:
    """Free text as a page shows it: `lang` is the language of `text` when it is not the
    page's (a fallback the page marks), None when it is the page's or is not known."""

    text: str
    lang: str | None = None


@cache
def texts(lang: str) -> dict[str, Any]:
    return json.loads(
        files("coffeetrace.api").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8")
    )


@cache
def locale(lang: str) -> Locale:
    """The babel locale that formats a page's numbers and dates."""
    return Locale.parse(lang if lang in LANGS else DEFAULT_LANG)


def is_variants(value: Any) -> bool:
    """Whether `value` is free text given by language: a non-empty object whose keys are
    page languages and whose values are text."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(k in LANGS and isinstance(v, str) for k, v in value.items())
    )


def variant(value: Any, lang: str) -> Variant | None:
    """The text of `value` for a page in `lang`: its `lang` variant; else the other
    language's, marked with that language; a plain string as it is (its language is not
    known). None for nothing to show (None, empty text, no non-empty variant)."""
    if is_variants(value):
        for candidate in (lang, *(other for other in LANGS if other != lang)):
            text = value.get(candidate)
            if text and text.strip():
                return Variant(text, None if candidate == lang else candidate)
        return None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return Variant(str(value))


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
