"""QR codes and labels: an ordinary QR reader (zxing-cpp) decodes the printed code and the
URL it carries opens the right lot's page."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from coffeetrace.api import qr
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import GTIN, Tenant, make_tenant


def decode(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1, found
    return found[0].text


def test_lot_qr_decodes_to_the_lot_page(client: TestClient, tenant_a: Tenant) -> None:
    r = client.get(f"/v1/lots/{tenant_a.green['id']}/qr.png", headers=tenant_a.auth("read-only"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    url = decode(r.content)
    assert url == f"http://testserver/01/{GTIN}/10/{tenant_a.green['code']}"
    for lang, words in (("vi", "cây cà phê"), ("en", "coffee trees")):
        page = client.get(url, headers={"Accept": "text/html", "Accept-Language": lang})
        assert page.status_code == 200
        assert tenant_a.green["code"] in page.text and words in page.text


def test_lot_without_gtin_gets_a_short_uri(client: TestClient, tenant_a: Tenant) -> None:
    # the cherry lot has no product, so no GTIN
    r = client.get(f"/v1/lots/{tenant_a.cherry['id']}/qr.svg", headers=tenant_a.auth("read-only"))
    assert r.headers["content-type"] == "image/svg+xml" and r.text.lstrip().startswith("<svg")
    assert r.headers["x-encoded-uri"] == f"http://testserver/l/{tenant_a.cherry['public_id']}"
    png = client.get(
        f"/v1/lots/{tenant_a.cherry['id']}/qr.png", headers=tenant_a.auth("read-only")
    ).content
    url = decode(png)
    assert client.get(url, headers={"Accept": "text/html"}).status_code == 200


def test_tree_tag_qr(client: TestClient, tenant_a: Tenant) -> None:
    tree = tenant_a.world.trees[1]
    png = client.get(f"/v1/trees/{tree['id']}/qr.png", headers=tenant_a.auth("read-only")).content
    url = decode(png)
    assert url == f"http://testserver/t/{tree['public_id']}"
    assert tree["tag_code"] in client.get(url, headers={"Accept": "text/html"}).text


def test_print_grade_error_correction_and_quiet_zone() -> None:
    code = qr.make("https://trace.example.vn/01/08930000000019/10/G-2025-0001")
    assert code.error in ("Q", "H")
    scale = 10
    image = Image.open(io.BytesIO(qr.render("https://x.vn/l/abc", "png", scale=scale))).convert("L")
    # the 4-module quiet zone is white all round
    width, height = image.size
    band = qr.QUIET_ZONE * scale
    for x in range(0, width, 3):
        for y in list(range(band)) + list(range(height - band, height)):
            assert image.getpixel((x, y)) == 255 and image.getpixel((y, x)) == 255
    assert image.getpixel((band, band)) == 0  # the finder pattern starts right after it


def test_labels_pdf(client: TestClient, conn: psycopg.Connection, tenant_a: Tenant) -> None:
    lots = [tenant_a.green["id"], tenant_a.cherry["id"]] * 5
    r = client.post(
        "/v1/labels", json={"lot_ids": [str(i) for i in lots]}, headers=tenant_a.auth("read-only")
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", r.content)) == 2  # 10 labels, 8 a page


def _cli(args: list[str], db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        COFFEETRACE_DATABASE_URL=db_url,
        COFFEETRACE_PUBLIC_BASE_URL="https://trace.example.vn",
        COFFEETRACE_DATA_DIR=str(tmp_path / "data"),
    )
    return subprocess.run(
        [sys.executable, "-m", "coffeetrace", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_qr_labels_and_apikey(
    db_url: str, conn: psycopg.Connection, tmp_path: Path, keys: KeyRing
) -> None:
    tenant = make_tenant(conn, keys=keys)
    done = _cli(["qr", tenant.green["code"]], db_url, tmp_path)
    assert done.returncode == 0, done.stderr
    png = (tmp_path / f"{tenant.green['code']}.png").read_bytes()
    assert decode(png) == f"https://trace.example.vn/01/{GTIN}/10/{tenant.green['code']}"
    done = _cli(
        ["labels", tenant.green["code"], tenant.cherry["public_id"], "--out", "l.pdf"],
        db_url,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "l.pdf").read_bytes().startswith(b"%PDF")
    done = _cli(
        ["apikey", "create", "--coop", tenant.world.coop["code"], "--role", "operator"],
        db_url,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    from coffeetrace.api.auth import caller_for_token

    assert caller_for_token(conn, token).role == "operator"
    bad = _cli(["apikey", "create", "--coop", "no-such-coop", "--role", "admin"], db_url, tmp_path)
    assert bad.returncode == 2 and "no-such-coop" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli(["qr", "NO-SUCH-LOT"], db_url, tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_printed_label_sheet_decodes_to_the_right_pages(
    client: TestClient, tenant_a: Tenant
) -> None:
    """Render the A4 sheet at print resolution, read every QR on it as a phone would, and
    follow each to its lot's page."""
    import pypdfium2

    lots = [tenant_a.green, tenant_a.cherry]
    r = client.post(
        "/v1/labels",
        json={"lot_ids": [str(lot["id"]) for lot in lots]},
        headers=tenant_a.auth("read-only"),
    )
    assert r.status_code == 200
    pdf = pypdfium2.PdfDocument(r.content)
    page = pdf[0]
    width_mm = page.get_width() / 72 * 25.4
    assert round(width_mm) == 210  # A4
    image = page.render(scale=300 / 72).to_pil().convert("L")  # 300 dpi, as printed
    found = zxingcpp.read_barcodes(image)
    expected = {
        f"http://testserver/01/{GTIN}/10/{tenant_a.green['code']}": tenant_a.green,
        f"http://testserver/l/{tenant_a.cherry['public_id']}": tenant_a.cherry,
    }
    assert sorted(code.text for code in found) == sorted(expected)
    for url, lot in expected.items():
        assert lot["code"] in client.get(url, headers={"Accept": "text/html"}).text
    pdf.close()
