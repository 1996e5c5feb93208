"""HTTP hardening over real HTTP: body limits before authentication, security headers,
gzip with ETags, OPTIONS with Allow, and no 5xx after a database restart."""

from __future__ import annotations

import gzip
import http.client
import json
import select
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from coffeetrace.embedded import EmbeddedPostgres, free_port
from coffeetrace.migrate import migrate
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, make_tenant
from tests.api.server import serve

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
MIB = 1024 * 1024


def _request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client (which never adds Accept-Encoding by itself)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _raw(
    base: str, head: bytes, *, then: bytes = b"", pieces: list[bytes] = ()
) -> tuple[bytes, bool]:
    """Send `head` and `then`, then `pieces` one by one for as long as no answer comes, and
    read the answer to its end; the answer and whether the server closed the connection
    (instead of waiting for the rest)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + then)
        for piece in pieces:
            if select.select([sock], [], [], 2)[0]:
                break  # answered: send no more (unread bytes would make the close a reset)
            sock.sendall(piece)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return data, False
            if not chunk:
                return data, True
            data += chunk


def _lot(tenant: Tenant) -> str:
    assert tenant.green is not None
    return f"/l/{tenant.green['public_id']}"


def test_oversized_body_refused_before_auth_and_before_reading(settings: Settings) -> None:
    with serve(settings) as base:
        # 200 MB announced, 5 bytes sent: the 413 comes back and the connection is closed,
        # without the server waiting for (or reading) the body, and before the missing key
        head = (
            b"POST /v1/farms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200000000\r\n\r\n"
        )
        answer, closed = _raw(base, head, then=b'{"a":')
        assert closed, "the server waited for the announced body"
        status_line, _, rest = answer.partition(b"\r\n")
        assert b" 413 " in status_line
        headers, _, body = rest.partition(b"\r\n\r\n")
        assert b"connection: close" in headers.lower()
        assert b"x-content-type-options: nosniff" in headers.lower()
        error = json.loads(body)
        assert error["error"] == "too_large" and error["details"]["max_bytes"] == MIB
        assert set(error) == {"error", "message", "details"}

        # a body within the limit reaches authentication as before
        status, _, body = _request(base, "POST", "/v1/farms", b"{}", {"Content-Type": "x/json"})
        assert status == 401 and json.loads(body)["error"] == "unauthorized"


def test_chunked_body_stops_at_the_limit(settings: Settings, tenant_a: Tenant) -> None:
    small = settings.model_copy(update={"api_max_body_bytes": 64 * 1024})
    with serve(small) as base:
        head = (
            b"POST /v1/farms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"4000\r\n" + b"a" * 16384 + b"\r\n"
        answer, closed = _raw(base, head, pieces=[chunk] * 64)  # up to 1 MiB, never ended
        assert closed
        assert b" 413 " in answer.partition(b"\r\n")[0]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "too_large"

        # with a key too, and for the lot endpoint its own, larger limit
        auth = tenant_a.auth("admin")
        status, _, body = _request(base, "POST", "/v1/farms", b" " * 70_000, auth)
        assert status == 413 and json.loads(body)["details"]["max_bytes"] == 64 * 1024
        status, _, _ = _request(
            base, "POST", "/v1/lots", b" " * 70_000, auth | {"Content-Type": "application/json"}
        )
        assert status == 422  # read, parsed and refused for its content, not its size


def test_security_headers_everywhere(settings: Settings, tenant_a: Tenant) -> None:
    with serve(settings) as base:
        page = _request(base, "GET", _lot(tenant_a), headers=BROWSER)
        document = _request(base, "GET", _lot(tenant_a), headers={"Accept": "application/json"})
        api = _request(base, "GET", "/v1/me", headers=tenant_a.auth("read-only"))
        error = _request(base, "GET", "/v1/me")
        missing = _request(base, "GET", "/no/such/page")
        docs = _request(base, "GET", "/docs")
        for status, headers, _ in (page, document, api, error, missing, docs):
            assert status in (200, 401, 404)
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["x-frame-options"] == "DENY"
            assert headers["referrer-policy"] == "no-referrer"
            assert "camera=()" in headers["permissions-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert "strict-transport-security" not in headers
        assert page[0] == 200 and page[1]["content-type"].startswith("text/html")
        csp = page[1]["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp  # no script at all
        assert b"<script" not in page[2].lower()
        assert error[0] == 401 and missing[0] == 404
        # Swagger UI runs scripts from its CDN: its own, relaxed policy
        assert "https://cdn.jsdelivr.net" in docs[1]["content-security-policy"]

    with serve(settings.model_copy(update={"api_hsts_seconds": 31_536_000})) as base:
        for path in (_lot(tenant_a), "/v1/me", "/healthz"):
            _, headers, _ = _request(base, "GET", path, headers=BROWSER)
            assert headers["strict-transport-security"] == "max-age=31536000"


def test_gzip_when_asked_and_etags_still_revalidate(settings: Settings, tenant_a: Tenant) -> None:
    with serve(settings) as base:
        status, plain, identity = _request(base, "GET", _lot(tenant_a), headers=BROWSER)
        assert status == 200 and "content-encoding" not in plain
        assert len(identity) > 1024

        zipped_headers = BROWSER | {"Accept-Encoding": "gzip"}
        status, coded, body = _request(base, "GET", _lot(tenant_a), headers=zipped_headers)
        assert status == 200 and coded["content-encoding"] == "gzip"
        assert gzip.decompress(body) == identity and len(body) < len(identity) / 2
        assert "accept-encoding" in coded["vary"].lower()
        assert coded["etag"] == "W/" + plain["etag"]  # other bytes, a weak validator

        # both get their 304, whichever tag they send back
        for headers, tag in ((BROWSER, plain["etag"]), (zipped_headers, coded["etag"])):
            status, _, body = _request(
                base, "GET", _lot(tenant_a), headers=headers | {"If-None-Match": tag}
            )
            assert status == 304 and body == b""

        # JSON too, and a small answer is left alone
        status, coded, body = _request(
            base,
            "GET",
            _lot(tenant_a),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip"},
        )
        assert status == 200 and coded["content-encoding"] == "gzip"
        assert json.loads(gzip.decompress(body))
        status, small, _ = _request(base, "GET", "/healthz", headers={"Accept-Encoding": "gzip"})
        assert status == 200 and "content-encoding" not in small


def test_options_and_405_list_every_method_of_the_path(
    settings: Settings, tenant_a: Tenant
) -> None:
    with serve(settings) as base:
        status, headers, body = _request(base, "OPTIONS", "/v1/farms")
        assert status == 204 and body == b""
        assert headers["allow"] == "GET, HEAD, OPTIONS, POST"
        status, headers, _ = _request(base, "OPTIONS", _lot(tenant_a))
        assert status == 204 and headers["allow"] == "GET, HEAD, OPTIONS"
        status, headers, body = _request(base, "PATCH", "/v1/farms", b"{}", tenant_a.auth())
        assert status == 405 and headers["allow"] == "GET, HEAD, OPTIONS, POST"
        assert json.loads(body)["error"] == "method_not_allowed"
        status, _, _ = _request(base, "OPTIONS", "/no/such/path")
        assert status == 404


def test_head_answers_like_get_without_the_body(settings: Settings, tenant_a: Tenant) -> None:
    with serve(settings) as base:
        for path, headers in (
            ("/healthz", {}),
            (_lot(tenant_a), BROWSER),
            ("/v1/farms", tenant_a.auth()),
        ):
            got_status, got_headers, got_body = _request(base, "GET", path, headers=headers)
            status, head_headers, body = _request(base, "HEAD", path, headers=headers)
            assert (status, body) == (got_status, b""), path
            assert got_status == 200 and got_body, path
            assert head_headers["content-length"] == str(len(got_body)), path
            assert head_headers["content-type"] == got_headers["content-type"], path
        status, headers, _ = _request(base, "HEAD", "/v1/devices/x-1/disable")  # POST only
        assert status == 405 and "HEAD" not in headers["allow"]
        status, _, _ = _request(base, "HEAD", "/no/such/path")
        assert status == 404


def test_unparsable_body_is_the_documented_422(settings: Settings, tenant_a: Tenant) -> None:
    with serve(settings) as base:
        headers = tenant_a.auth() | {"Content-Type": "application/json"}
        status, _, body = _request(base, "POST", "/v1/farms", b"\xff\xfe{", headers)
        assert status == 422 and json.loads(body)["error"] == "invalid"


def test_no_5xx_after_a_database_restart(settings: Settings, tmp_path: Path, keys: KeyRing) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    try:
        with psycopg.connect(pg.url, row_factory=dict_row) as conn:
            migrate(conn)
            tenant = make_tenant(conn, keys=keys)
        own = settings.model_copy(update={"database_url": pg.url, "db_pool_max": 10})
        auth = tenant.auth("read-only")
        with serve(own) as base, ThreadPoolExecutor(10) as workers:

            def statuses(n: int, path: str = "/v1/me") -> list[int]:
                return list(
                    workers.map(lambda _: _request(base, "GET", path, headers=auth)[0], range(n))
                )

            assert set(statuses(30)) == {200}  # the pool now holds several connections
            pg.stop("fast")  # every pooled connection is now broken
            assert _request(base, "GET", "/readyz")[0] == 503
            pg.start()
            after = statuses(30) + statuses(30, "/v1/farms")
            assert [s for s in after if s >= 500] == []
            assert set(after) == {200}
    finally:
        pg.stop("immediate")
