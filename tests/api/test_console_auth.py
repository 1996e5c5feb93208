"""Console logins and sessions over HTTP on a real database: login and logout, wrong
passwords, throttling, CSRF, roles, and a disabled user's session."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from tests.api.builders import Tenant
from tests.api.console_helpers import PASSWORD, csrf_of, login, make_user


def test_login_then_logout(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    assert (
        client.get("/console/", follow_redirects=False)
        .headers["location"]
        .startswith("/console/login")
    )
    name = make_user(conn, tenant_a, "operator", settings)
    answer = login(client, tenant_a, name)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP and COFFEETRACE_CONSOLE_COOKIE_SECURE off
    today = client.get("/console/")
    assert today.status_code == 200
    assert "Hôm nay" in today.text and tenant_a.world.coop["name"] in today.text
    assert "default-src 'none'" in today.headers["content-security-policy"]
    stored = conn.execute("select token_hash from console_sessions").fetchone()
    assert stored and client.cookies["ct_console"] not in stored["token_hash"]
    out = client.post("/console/logout", data={"csrf": csrf_of(today.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert conn.execute("select revoked_at from console_sessions").fetchone()["revoked_at"]
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_english_switch(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "read-only", settings))
    client.get("/console/lang/en?next=/console/harvests")
    page = client.get("/console/harvests")
    assert "Harvests" in page.text and '<html lang="en">' in page.text


def test_wrong_password_and_unknown_user_answer_alike(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    name = make_user(conn, tenant_a, "admin", settings)
    wrong = login(client, tenant_a, name, "not the password at all")
    nobody = login(client, tenant_a, "nobody", PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert "không đúng" in wrong.text and "ct_console=" not in wrong.headers.get("set-cookie", "")
    assert conn.execute("select count(*) as n from console_sessions").fetchone()["n"] == 0


def test_throttled_per_account_then_per_address(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    name = make_user(conn, tenant_a, "admin", settings)
    for _ in range(settings.console_login_max_failures_per_account):
        assert login(client, tenant_a, name, "wrong password!!").status_code == 401
    # now even the right password is refused until the window has passed
    refused = login(client, tenant_a, name)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert "quá nhiều lần" in refused.text
    # the address: other accounts too, once its own limit is reached
    conn.execute(
        "insert into console_login_failures (account, client_addr)"
        " select 'x/' || n, 'testclient' from generate_series(1, %s) n",
        (settings.console_login_max_failures_per_address,),
    )
    conn.commit()
    other = make_user(conn, tenant_a, "operator", settings)
    assert login(client, tenant_a, other).status_code == 429


def test_csrf_refused_without_and_with_a_wrong_token(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    # the login form too
    assert (
        client.post(
            "/console/login",
            data={"cooperative": tenant_a.world.coop["code"], "username": "x", "password": "y"},
        ).status_code
        == 403
    )
    login(client, tenant_a, make_user(conn, tenant_a, "admin", settings))
    form = {"username": "clerk", "role": "operator", "password": PASSWORD}
    missing = client.post("/console/users", data=form)
    wrong = client.post("/console/users", data={**form, "csrf": "x" * 43})
    assert missing.status_code == wrong.status_code == 403
    assert "CSRF" in missing.text or "phiên này" in missing.text
    assert (
        conn.execute("select count(*) as n from console_users where username = 'clerk'").fetchone()[
            "n"
        ]
        == 0
    )
    good = client.post(
        "/console/users",
        data={**form, "csrf": csrf_of(client.get("/console/users").text)},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert (
        conn.execute("select role from console_users where username = 'clerk'").fetchone()["role"]
        == "operator"
    )


def test_read_only_user_cannot_submit(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    login(client, tenant_a, make_user(conn, tenant_a, "read-only", settings))
    page = client.get("/console/harvests")
    assert page.status_code == 200 and 'name="harvest_id"' not in page.text
    harvest = conn.execute(
        "select id from harvest_events where cooperative_id = %s limit 1", (tenant_a.coop_id,)
    ).fetchone()
    answer = client.post(
        "/console/harvests/lot",
        data={"csrf": csrf_of(page.text), "code": "RO-1", "harvest_id": str(harvest["id"])},
    )
    assert answer.status_code == 403 and "operator" in answer.text
    assert client.get("/console/users").status_code == 403
    assert conn.execute("select count(*) as n from lots where code = 'RO-1'").fetchone()["n"] == 0


def test_disabled_user_session_ends(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    clerk = make_user(conn, tenant_a, "operator", settings, name="clerk")
    login(client, tenant_a, clerk)
    assert client.get("/console/").status_code == 200
    with TestClient(create_app(settings)) as admin:  # another browser
        login(admin, tenant_a, make_user(conn, tenant_a, "admin", settings))
        page = admin.get("/console/users")
        user_id = conn.execute("select id from console_users where username = 'clerk'").fetchone()[
            "id"
        ]
        done = admin.post(
            f"/console/users/{user_id}/disable",
            data={"csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert done.status_code == 303
    gone = client.get("/console/", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")
    assert login(client, tenant_a, clerk).status_code == 401  # and cannot log in again


def test_admin_resets_password_of_own_cooperative_only(
    client: TestClient,
    conn: psycopg.Connection,
    tenant_a: Tenant,
    tenant_b: Tenant,
    settings: Settings,
) -> None:
    other = make_user(conn, tenant_b, "operator", settings, name="other")
    other_id = conn.execute(
        "select id from console_users where username = %s", (other,)
    ).fetchone()["id"]
    login(client, tenant_a, make_user(conn, tenant_a, "admin", settings))
    token = csrf_of(client.get("/console/users").text)
    answer = client.post(
        f"/console/users/{other_id}/password", data={"csrf": token, "password": "x" * 20}
    )
    assert answer.status_code == 404
    with TestClient(create_app(settings)) as theirs:
        assert login(theirs, tenant_b, other).status_code == 303  # unchanged
    short = client.post(
        f"/console/users/{other_id}/password", data={"csrf": token, "password": "short"}
    )
    assert short.status_code == 422 and "10" in short.text


def test_admin_ends_a_session(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, settings: Settings
) -> None:
    clerk = make_user(conn, tenant_a, "operator", settings, name="clerk")
    login(client, tenant_a, clerk)
    with TestClient(create_app(settings)) as admin:  # another browser
        login(admin, tenant_a, make_user(conn, tenant_a, "admin", settings))
        page = admin.get("/console/users")
        live = conn.execute(
            "select s.id from console_sessions s join console_users u on u.id = s.user_id"
            " where u.username = 'clerk'"
        ).fetchone()["id"]
        assert str(live) in page.text
        ended = admin.post(
            f"/console/sessions/{live}/revoke",
            data={"csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert ended.status_code == 303
        assert admin.get("/console/").status_code == 200  # the admin's own goes on
    assert client.get("/console/", follow_redirects=False).status_code == 303
    assert login(client, tenant_a, clerk).status_code == 303  # the account itself is fine
