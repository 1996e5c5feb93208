"""Jinja2 rendering of the public pages (server-side, autoescaped, no script)."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from coffeetrace.api import i18n, svg


def _kg(value: Any) -> str:
    try:
        return f"{float(value):,.0f}".replace(",", " ")
    except (TypeError, ValueError):
        return ""


def _num(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value):,.{digits}f}".replace(",", " ")
    except (TypeError, ValueError):
        return ""


def _pct(value: Any) -> str:
    try:
        return f"{float(value) * 100:.1f} %"
    except (TypeError, ValueError):
        return ""


def _day(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime | date):
        return value.strftime("%d.%m.%Y")
    return ""


def _host(value: str) -> str:
    return urlsplit(value).hostname or value


def plural(t: dict[str, Any], key: str, n: int) -> str:
    """The text `key` for a count: `{key}_one` for 1, else `{key}_other` (Vietnamese nouns
    do not inflect, so both of its forms read the same)."""
    return str(t[f"{key}_one" if n == 1 else f"{key}_other"]).format(n=n)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("coffeetrace.api", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(kg=_kg, num=_num, pct=_pct, day=_day, host=_host)
    env.globals["plural"] = plural
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
