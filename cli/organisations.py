"""Commands of organisations and their partners: `org show|set-roles` (setting roles is
the platform admin's, as PUT /admin/organisations/{code}/roles) and `partner
list|propose|accept|decline|end` (what an organisation's admin does through /v1/partners).
The rules are trace/organisations.py's and trace/partners.py's."""

from __future__ import annotations

import json
from uuid import UUID

import typer

from coffeetrace.cli.apps import app
from coffeetrace.cli.trace import _connection
from coffeetrace.console import friendly, say
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.settings import get_settings
from coffeetrace.trace import organisations, partners
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.keys import KeyRing

org_app = typer.Typer(
    help="Organisations (the tenants): profiles and roles in the chain.", no_args_is_help=True
)
app.add_typer(org_app, name="org")
partner_app = typer.Typer(
    help="An organisation's trading partners (proposed, accepted, declined, ended).",
    no_args_is_help=True,
)
app.add_typer(partner_app, name="partner")

ORG_HELP = "The organisation's code."
ROLES_HELP = f"One or more of {', '.join(organisations.ROLES)}."
SCOPE_HELP = (
    f"What each may see of the other's upstream data: {', '.join(partners.SCOPES)}"
    " (repeat; default both)."
)
DEFAULT_SCOPES = list(partners.DEFAULT_SCOPES)


def _org_id(conn: DbConn, code: str) -> UUID:
    org = organisations.find(conn, code)
    if org["code"] != code:
        raise NotFound(f"no organisation has the code {code[:60]!r}", kind="organisation")
    return UUID(str(org["id"]))


def _partnership_id(given: str) -> UUID:
    try:
        return UUID(given)
    except ValueError:
        raise ValidationFailed(
            f"{given[:60]!r} is not a partnership id (see coffeetrace partner list)"
        ) from None


def _line(row: Row) -> str:
    """One partnership, tab-separated: id, status, partner, who proposed, scopes."""
    by = "proposed by us" if row["proposed_by_us"] else "proposed by them"
    return "\t".join(
        [str(row["id"]), row["status"], row["partner"]["code"], by, ",".join(row["scopes"])]
    )


@org_app.command("show")
@friendly
def org_show(org: str = typer.Option(..., "--org", help=ORG_HELP)) -> None:
    """The organisation's profile as JSON: roles, public name, country, GLN, GS1 prefixes."""
    with _connection(get_settings()) as conn:
        row = organisations.get_profile(conn, _org_id(conn, org))
        conn.rollback()
    print(json.dumps(jsonable(row), indent=2, ensure_ascii=False))


@org_app.command("set-roles")
@friendly
def org_set_roles(
    roles: list[str] = typer.Argument(..., help=ROLES_HELP),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
) -> None:
    """Replace the organisation's roles (the platform admin's)."""
    with _connection(get_settings()) as conn:
        row = organisations.set_roles(conn, org, roles)
        conn.commit()
    say(f"organisation {row['code']}: {', '.join(row['roles'])}")


@partner_app.command("list")
@friendly
def partner_list(
    org: str = typer.Option(..., "--org", help=ORG_HELP),
    status: str | None = typer.Option(
        None, "--status", help=f"Only those {'|'.join(partners.STATUSES)}."
    ),
) -> None:
    """The organisation's partnerships (stdout, tab-separated): id, status, partner,
    who proposed, scopes."""
    with _connection(get_settings()) as conn:
        org_id = _org_id(conn, org)
        after = None
        while True:
            rows = partners.list_partnerships(conn, org_id, status=status, after=after, limit=500)
            for row in rows:
                print(_line(row))
            if len(rows) < 500:
                break
            after = rows[-1]["id"]
        conn.rollback()


@partner_app.command("propose")
@friendly
def partner_propose(
    partner: str = typer.Argument(..., help="The other organisation's code or id."),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
    scope: list[str] = typer.Option(DEFAULT_SCOPES, "--scope", help=SCOPE_HELP),
) -> None:
    """Propose a trading partnership; the other organisation accepts or declines it."""
    keys = KeyRing(get_settings().effective_keys_dir())
    with _connection(get_settings()) as conn:
        row = partners.propose(conn, _org_id(conn, org), partner, keys=keys, scopes=scope)
        conn.commit()
    say(f"partnership {row['id']} proposed to {row['partner']['code']}; it awaits their answer")
    print(row["id"])


def _change(org: str, partnership: str, verb: str) -> None:
    keys = KeyRing(get_settings().effective_keys_dir())
    partnership_id = _partnership_id(partnership)
    change = {"accept": partners.accept, "decline": partners.decline, "end": partners.end}[verb]
    with _connection(get_settings()) as conn:
        row = change(conn, _org_id(conn, org), partnership_id, keys=keys)
        conn.commit()
    say(f"partnership {row['id']} with {row['partner']['code']}: {row['status']}")


@partner_app.command("accept")
@friendly
def partner_accept(
    partnership: str = typer.Argument(..., help="The partnership's id (partner list)."),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
) -> None:
    """Accept a partnership proposed to the organisation."""
    _change(org, partnership, "accept")


@partner_app.command("decline")
@friendly
def partner_decline(
    partnership: str = typer.Argument(..., help="The partnership's id (partner list)."),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
) -> None:
    """Decline a partnership proposed to the organisation."""
    _change(org, partnership, "decline")


@partner_app.command("end")
@friendly
def partner_end(
    partnership: str = typer.Argument(..., help="The partnership's id (partner list)."),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
) -> None:
    """End a partnership, or withdraw a proposal."""
    _change(org, partnership, "end")
