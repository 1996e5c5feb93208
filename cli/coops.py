"""Commands of the platform admin: `coop create|list|add-prefix|remove-prefix` (the rules
are trace/cooperatives.py's, as for the admin API) and `admin-key create|list|revoke`
(the keys of that API)."""

from __future__ import annotations

from uuid import UUID

import typer

from coffeetrace.api.auth import (
    create_platform_admin_key,
    list_platform_admin_keys,
    revoke_platform_admin_key,
)
from coffeetrace.cli.apps import app
from coffeetrace.cli.trace import _connection
from coffeetrace.console import friendly, say
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.settings import get_settings
from coffeetrace.trace import cooperatives
from coffeetrace.trace.keys import KeyRing

coop_app = typer.Typer(
    help="Cooperatives (the tenants) and their GS1 company prefixes.", no_args_is_help=True
)
app.add_typer(coop_app, name="coop")
admin_key_app = typer.Typer(
    help="Platform-admin keys of the admin API (/admin/...; never a cooperative's key).",
    no_args_is_help=True,
)
app.add_typer(admin_key_app, name="admin-key")


def _prefixes(row: dict) -> str:
    return ", ".join(row["gs1_prefixes"]) or "no GS1 prefix"


@coop_app.command("create")
@friendly
def coop_create(
    code: str = typer.Argument(..., help="Its code: 2-40 of a-z, 0-9, '-' (used by --coop)."),
    name: str = typer.Option(..., "--name", help="Its name, as on its pages."),
    gs1_prefix: list[str] = typer.Option(
        [], "--gs1-prefix", help="A GS1 company prefix GS1 assigned to it (repeat for more)."
    ),
    country: str = typer.Option("VN", "--country", help="ISO 3166 alpha-2 code."),
    province: str | None = typer.Option(None, "--province"),
) -> None:
    """Create a cooperative with its GS1 company prefixes and its signing key."""

    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    with _connection(settings) as conn:
        row = cooperatives.create_cooperative(
            conn,
            code,
            name,
            keys=keys,
            gs1_prefixes=gs1_prefix,
            country=country,
            province=province,
        )
        conn.commit()
    say(
        f"cooperative {row['code']} ({row['id']}): {_prefixes(row)}; signing key"
        f" {row['signing_key_id']}. Its first key: coffeetrace apikey create --coop"
        f" {row['code']} --role admin"
    )


@coop_app.command("list")
@friendly
def coop_list() -> None:
    """Every cooperative: code, name, GS1 company prefixes (stdout, tab-separated)."""

    settings = get_settings()
    with _connection(settings) as conn:
        after = None
        while True:
            rows = cooperatives.list_cooperatives(conn, after=after, limit=500)
            for row in rows:
                print(f"{row['code']}\t{row['name']}\t{','.join(row['gs1_prefixes'])}")
            if len(rows) < 500:
                break
            after = rows[-1]["code"]
        conn.rollback()


@coop_app.command("add-prefix")
@friendly
def coop_add_prefix(
    code: str = typer.Argument(..., help="Cooperative code."),
    prefix: str = typer.Argument(..., help="GS1 company prefix, 4 to 12 digits."),
) -> None:
    """Give a cooperative one more GS1 company prefix."""
    with _connection(get_settings()) as conn:
        row = cooperatives.add_gs1_prefix(conn, code, prefix)
        conn.commit()
    say(f"cooperative {code}: {_prefixes(row)}")


@coop_app.command("remove-prefix")
@friendly
def coop_remove_prefix(
    code: str = typer.Argument(..., help="Cooperative code."),
    prefix: str = typer.Argument(..., help="GS1 company prefix."),
) -> None:
    """Take a GS1 company prefix away (products keep the GTINs they have)."""
    with _connection(get_settings()) as conn:
        row = cooperatives.remove_gs1_prefix(conn, code, prefix)
        conn.commit()
    say(f"cooperative {code}: {_prefixes(row)}")


@admin_key_app.command("create")
@friendly
def admin_key_create(
    name: str = typer.Option("", "--name", help="Who or what the key is for."),
) -> None:
    """Issue a platform-admin key; the token is printed once (stdout), only its hash kept."""
    with _connection(get_settings()) as conn:
        issued = create_platform_admin_key(conn, name)
        conn.commit()
    say(
        f"platform-admin key {issued.row['prefix']} ({issued.row['id']}); keep it, it is"
        " not shown again:"
    )
    print(issued.token)


@admin_key_app.command("list")
@friendly
def admin_key_list() -> None:
    """The platform-admin keys (never their tokens): id, prefix, name, state."""
    with _connection(get_settings()) as conn:
        rows = list_platform_admin_keys(conn)
        conn.rollback()
    for row in rows:
        state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
        print(f"{row['id']}\t{row['prefix']}\t{row['name']}\t{state}")


@admin_key_app.command("revoke")
@friendly
def admin_key_revoke(
    key_id: str = typer.Argument(..., help="The key's id (admin-key list)."),
) -> None:
    """Revoke a platform-admin key at once."""
    try:
        parsed = UUID(key_id)
    except ValueError:
        raise ValidationFailed(
            f"{key_id!r} is not a key id (see coffeetrace admin-key list)"
        ) from None
    with _connection(get_settings()) as conn:
        row = revoke_platform_admin_key(conn, parsed)
        conn.commit()
    if row is None:
        raise NotFound(f"no platform-admin key has the id {key_id}")
    say(f"platform-admin key {row['prefix']} ({row['id']}) revoked")
