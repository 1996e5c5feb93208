"""`coffeetrace user create` bootstraps a cooperative's first console admin: the password
from stdin (or a prompt), nothing secret printed, and the account logs in."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coffeetrace.cli import app as cli
from tests.api.builders import Tenant
from tests.api.console_helpers import PASSWORD, login


def test_user_create_then_log_in(
    client: TestClient, conn: psycopg.Connection, tenant_a: Tenant, db_url: str
) -> None:
    runner = CliRunner()
    env = {"COFFEETRACE_DATABASE_URL": db_url}
    code = tenant_a.world.coop["code"]
    made = runner.invoke(
        cli,
        ["user", "create", "--org", code, "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert made.exit_code == 0, made.output
    assert "admin" in made.output and PASSWORD not in made.output
    row = conn.execute("select role, password_hash from console_users").fetchone()
    assert row["role"] == "admin" and row["password_hash"].startswith("$argon2id$")
    assert login(client, tenant_a, "admin").status_code == 303

    again = runner.invoke(
        cli,
        ["user", "create", "--org", code, "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert again.exit_code == 2 and "already has a user named" in again.output
    short = runner.invoke(
        cli,
        ["user", "create", "--org", code, "-u", "clerk", "--role", "operator", "--password-stdin"],
        input="short\n",
        env=env,
    )
    assert short.exit_code == 2 and "at least" in short.output
    nowhere = runner.invoke(
        cli,
        ["user", "create", "--org", "no-such-coop", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert nowhere.exit_code == 2 and "no cooperative" in nowhere.output
