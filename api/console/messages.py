"""The API's error messages in the console user's language.

An error the domain or the API raised is shown as the API would answer it: in English its
own message; in Vietnamese the text of its rule or code (locales/vi.json, `errors`) with
the error's figures filled in, numbers written as Vietnamese writes them. An error
without a text of its own keeps the API's message, so nothing is ever hidden.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from coffeetrace.api.i18n import DEFAULT_LANG, LANGS
from coffeetrace.api.render import format_number
from coffeetrace.errors import CoffeetraceError, RuleViolation
from coffeetrace.trace.vocabulary import NUMERIC_TEXT


@cache
def texts(lang: str) -> dict[str, Any]:
    """The console's texts in `lang` (Vietnamese for a language it does not have)."""
    lang = lang if lang in LANGS else DEFAULT_LANG
    path = files("coffeetrace.api.console").joinpath("locales", f"{lang}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _figure(value: Any, lang: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and NUMERIC_TEXT.match(value)):
        return format_number(value, lang)
    return value


def error_key(exc: CoffeetraceError) -> str:
    """The rule of a rule violation, else the error's code (what the API's body says)."""
    if isinstance(exc, RuleViolation):
        return exc.rule
    return "csrf" if exc.details.get("reason") == "csrf" else exc.code


def translate(exc: CoffeetraceError, lang: str) -> str:
    template = texts(lang).get("errors", {}).get(error_key(exc))
    if not template:
        return exc.message
    figures = {k: _figure(v, lang) for k, v in exc.details.items()}
    try:
        return str(template).format(**figures, message=exc.message)
    except (KeyError, IndexError, ValueError):  # the error lacks a figure the text names
        return exc.message
