"""Commands of the console's users: `user create` (the first admin of a cooperative, and
any other), `user disable`."""

from __future__ import annotations

import sys

import typer

from coffeetrace import db
from coffeetrace.api.console import users
from coffeetrace.cli.apps import app
from coffeetrace.console import friendly, say
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.settings import get_settings
from coffeetrace.trace.registry import get_cooperative_by_code

user_app = typer.Typer(
    help="People who log in to the console (/console); API keys stay for machines.",
    no_args_is_help=True,
)
app.add_typer(user_app, name="user")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Password again", hide_input=True) != first:
        raise ValidationFailed("the two passwords differ")
    return first


@user_app.command("create")
@friendly
def user_create(
    coop: str = typer.Option(..., "--org", "--coop", help="Cooperative (organisation) code."),
    username: str = typer.Option("admin", "--username", "-u", help="User name to log in with."),
    role: str = typer.Option(..., "--role", help="admin, operator or read-only."),
    display_name: str = typer.Option("", "--name", help="Name shown in the console."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Create a console user; the password comes from a prompt or stdin, never an option."""

    settings = get_settings()
    password = _password(password_stdin)
    with db.connect(settings.effective_database_url()) as conn:
        cooperative = get_cooperative_by_code(conn, coop)
        if cooperative is None:
            raise NotFound(f"no cooperative has the code {coop!r}")
        row = users.create_user(
            conn,
            cooperative["id"],
            username=username.strip().lower(),
            role=role,
            password=password,
            display_name=display_name,
            settings=settings,
        )
        conn.commit()
    say(f"user {row['username']} ({role}) of {coop} created; log in at /console/login")


@user_app.command("disable")
@friendly
def user_disable(
    coop: str = typer.Option(..., "--org", "--coop", help="Cooperative (organisation) code."),
    username: str = typer.Option(..., "--username", "-u", help="User name."),
) -> None:
    """Disable a console user; their sessions end at once."""

    settings = get_settings()
    with db.connect(settings.effective_database_url()) as conn:
        cooperative = get_cooperative_by_code(conn, coop)
        if cooperative is None:
            raise NotFound(f"no cooperative has the code {coop!r}")
        found = [u for u in users.list_users(conn, cooperative["id"]) if u["username"] == username]
        if not found:
            raise NotFound(f"{coop} has no console user {username!r}")
        users.set_disabled(conn, cooperative["id"], found[0]["id"], True)
        conn.commit()
    say(f"user {username} of {coop} disabled; their sessions have ended")
