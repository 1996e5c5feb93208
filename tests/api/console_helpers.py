"""Console test helpers: users made with the console's own function, logging in through
the login form, and the CSRF token read from a page as a browser would submit it."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from coffeetrace.api.console import users
from coffeetrace.settings import Settings
from tests.api.builders import Tenant

PASSWORD = "cà phê Ea Tu 2025"  # non-ASCII on purpose
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_user(
    conn: psycopg.Connection, tenant: Tenant, role: str, settings: Settings, name: str | None = None
) -> str:
    username = name or role.replace("-", "")
    users.create_user(
        conn, tenant.coop_id, username=username, role=role, password=PASSWORD, settings=settings
    )
    conn.commit()
    return username


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def login(client: TestClient, tenant: Tenant, username: str, password: str = PASSWORD) -> Any:
    form = client.get("/console/login")
    assert form.status_code == 200
    return client.post(
        "/console/login",
        data={
            "cooperative": tenant.world.coop["code"],
            "username": username,
            "password": password,
            "csrf": csrf_of(form.text),
            "next": "/console/",
        },
        follow_redirects=False,
    )
