"""Jinja2 rendering of the public pages (server-side, autoescaped, no script)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from babel import dates, numbers
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from coffeetrace.api import i18n, svg
from coffeetrace.trace.vocabulary import NUMERIC_TEXT

# Numbers and dates are written by babel with the locale of the page's language (the
# template context's `lang`): "1.234,5" and "10 thg 11, 2025" in Vietnamese, "1,234.5"
# and "Nov 10, 2025" in English. Patterns below only fix how many decimals a figure has;
# the locale supplies its separators, signs and order.
DATE_FORMAT = "medium"
INTERVAL_SKELETON = "yMMMd"  # the medium date's fields, for a period from one day to another


def _lang(ctx: Context) -> str:
    return str(ctx.get("lang") or i18n.DEFAULT_LANG)


def _number(value: Any) -> Decimal | float | None:
    """A figure as recorded: a number, or numeric text (kilograms come back from jsonb as
    strings); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str) and NUMERIC_TEXT.match(value.strip()):
        return Decimal(value.strip())
    return None


def format_number(value: Any, lang: str, digits: int | None = None) -> str:
    """`value` in the locale of `lang`, with `digits` decimals (None: as many as it has, up
    to the locale's usual three); "" when it is not a number."""
    number = _number(value)
    if number is None:
        return ""
    pattern = None if digits is None else "#,##0" + ("." + "0" * digits if digits else "")
    return numbers.format_decimal(number, format=pattern, locale=i18n.locale(lang))


@pass_context
def _num(ctx: Context, value: Any, digits: int = 1) -> str:
    return format_number(value, _lang(ctx), digits)


@pass_context
def _kg(ctx: Context, value: Any) -> str:
    return format_number(value, _lang(ctx), 0)


@pass_context
def _pct(ctx: Context, value: Any) -> str:
    """A share (0.125) as a percentage with one decimal ("12,5%" in Vietnamese)."""
    number = _number(value)
    if number is None:
        return ""
    return numbers.format_percent(number, format="#,##0.0%", locale=i18n.locale(_lang(ctx)))


def _as_date(value: Any) -> date | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    # babel writes a datetime's date as it stands (UTC for the recorded steps)
    return value if isinstance(value, datetime | date) else None


@pass_context
def _day(ctx: Context, value: Any) -> str:
    day = _as_date(value)
    if day is None:
        return value if isinstance(value, str) else ""
    return dates.format_date(day, DATE_FORMAT, locale=i18n.locale(_lang(ctx)))


@pass_context
def _days(ctx: Context, start: Any, end: Any = None) -> str:
    """A period from `start` to `end` as the locale writes one ("10 – 30 thg 11, 2025");
    a single day when `end` is missing or the same day."""
    first, last = _as_date(start), _as_date(end)
    if first is None or last is None or first == last:
        return _day(ctx, start if first is not None else end)
    return dates.format_interval(first, last, INTERVAL_SKELETON, locale=i18n.locale(_lang(ctx)))


@pass_context
def _text(ctx: Context, value: Any) -> Markup:
    """Free text a cooperative entered, in the page's language when it was given in it;
    else the other language's, tagged with its `lang` and marked "(in Vietnamese)"."""
    lang = _lang(ctx)
    shown = i18n.variant(value, lang)
    if shown is None:
        return Markup("")
    if shown.lang is None:
        return escape(shown.text)
    marker = i18n.texts(lang)["in_lang"][shown.lang]
    return Markup('<span lang="{}">{}</span> <small class="muted">({})</small>').format(
        shown.lang, shown.text, marker
    )


@pass_context
def _value(ctx: Context, value: Any) -> Markup:
    """A recorded value (a measurement): a number in the page's locale, else free text."""
    if _number(value) is not None:
        return escape(format_number(value, _lang(ctx)))
    return _text(ctx, value)


def _host(value: str) -> str:
    return urlsplit(value).hostname or value


def plural(t: dict[str, Any], key: str, n: int, shown: str | None = None) -> str:
    """The text `key` for a count: `{key}_one` for 1, else `{key}_other` (Vietnamese nouns
    do not inflect, so both of its forms read the same); `shown` is n as written."""
    return str(t[f"{key}_one" if n == 1 else f"{key}_other"]).format(
        n=n if shown is None else shown
    )


@pass_context
def _plural(ctx: Context, t: dict[str, Any], key: str, n: int) -> str:
    return plural(t, key, n, format_number(n, _lang(ctx), 0))


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("coffeetrace.api", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        kg=_kg, num=_num, pct=_pct, day=_day, days=_days, text=_text, value=_value, host=_host
    )
    env.globals["plural"] = _plural
    return env


def _common(lang: str) -> dict[str, Any]:
    return {"lang": lang, "t": i18n.texts(lang), "other_lang": "en" if lang == "vi" else "vi"}


def lot_html(data: dict[str, Any], lang: str, verify_url: str) -> bytes:
    t = i18n.texts(lang)
    charts = []
    specs = (
        ("precipitation", t["rain"], "mm", True, "#2b6cb0"),
        ("soilMoistureVwc", t["soil_moisture"], "%", False, "#8a5a12"),
        ("temperature", t["temperature"], "°C", False, "#c0392b"),
    )
    for metric, title, unit, bars, color in specs:
        drawn = svg.chart(
            data["conditions"].get(metric, []),
            title=title,
            unit=unit,
            bars=bars,
            color=color,
            month_names=t["months"],
            number=lambda v: format_number(v, lang, 0),
        )
        if drawn:
            charts.append((title, Markup(drawn)))
    drawn_map = svg.origin_map(data["map"]["plots"], data["map"]["trees"], t["origin_map"])
    page = (
        environment()
        .get_template("lot.html")
        .render(
            **_common(lang),
            **data,
            charts=charts,
            verify_url=verify_url,
            map_svg=Markup(drawn_map) if drawn_map else None,
        )
    )
    return page.encode()


def tree_html(data: dict[str, Any], lang: str) -> bytes:
    return environment().get_template("tree.html").render(**_common(lang), **data).encode()


def message_html(
    lang: str, heading_key: str, text_key: str | None = None, detail: str | None = None
) -> bytes:
    t = i18n.texts(lang)
    return (
        environment()
        .get_template("message.html")
        .render(
            **_common(lang),
            heading=t[heading_key],
            text=t[text_key] if text_key else "",
            detail=detail,
        )
        .encode()
    )
