"""A4 sheets of lot labels (fpdf2): QR code, lot code, product name, harvest period.

Eight labels per page (2 x 4, 105 x 74 mm cells, the common A4 sticker layout). A
Unicode TTF font is used when the system has one so Vietnamese names print as written;
otherwise the text falls back to unaccented ASCII rather than failing.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from fpdf import FPDF

from coffeetrace.api import qr

FONT_CANDIDATES = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
)
COLS, ROWS = 2, 4
CELL_W, CELL_H = 105.0, 74.25
QR_MM = 46.0


def ascii_fallback(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def harvest_period(lot: dict[str, Any]) -> str:
    start: date | None = lot.get("harvest_from")
    end: date | None = lot.get("harvest_to")
    if start and end:
        return f"{start:%d.%m.%Y} - {end:%d.%m.%Y}" if start != end else f"{start:%d.%m.%Y}"
    one = start or end
    return one.strftime("%d.%m.%Y") if one else ""


def render_labels(lots: Sequence[dict[str, Any]], base_url: str) -> bytes:
    """PDF bytes: one label per lot dict (keys code, public_id, gtin, product_name,
    harvest_from, harvest_to)."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title("coffeetrace lot labels")
    font, unicode_ok = "helvetica", False
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).exists() and Path(bold).exists():
            pdf.add_font("label", "", regular)
            pdf.add_font("label", "B", bold)
            font, unicode_ok = "label", True
            break

    def text(value: str) -> str:
        return value if unicode_ok else ascii_fallback(value)

    for i, lot in enumerate(lots):
        if i % (COLS * ROWS) == 0:
            pdf.add_page()
        col, row = i % COLS, (i // COLS) % ROWS
        x, y = col * CELL_W, row * CELL_H
        uri = qr.lot_uri(base_url, lot)
        png = io.BytesIO(qr.render(uri, "png", scale=10))
        pdf.image(png, x=x + 4, y=y + (CELL_H - QR_MM) / 2, w=QR_MM, h=QR_MM)
        tx, tw = x + 4 + QR_MM + 3, CELL_W - QR_MM - 11
        pdf.set_xy(tx, y + 12)
        pdf.set_font(font, "B", 15)
        pdf.multi_cell(tw, 7, text(lot["code"]))
        pdf.set_x(tx)
        pdf.set_font(font, "", 10)
        pdf.multi_cell(tw, 5, text(lot.get("product_name") or ""))
        period = harvest_period(lot)
        if period:
            pdf.set_x(tx)
            pdf.set_font(font, "", 9)
            pdf.multi_cell(tw, 5, text(f"Harvest / Thu hoạch: {period}"))
        pdf.set_x(tx)
        pdf.set_font(font, "", 6)
        pdf.multi_cell(tw, 3, uri)
        # cutting guide
        pdf.set_draw_color(200, 200, 200)
        pdf.rect(x, y, CELL_W, CELL_H)
    return bytes(pdf.output())
