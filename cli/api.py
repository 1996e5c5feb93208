"""Commands of this package: `qr`, `labels`, `apikey create`, `device create|rotate|disable|
enable`, `api`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
import uvicorn

from coffeetrace import db
from coffeetrace.api import qr as qrcodes
from coffeetrace.api.auth import create_api_key
from coffeetrace.api.labels import render_labels
from coffeetrace.api.serving import GuardedHTTPProtocol
from coffeetrace.broker_control import BrokerControl, check_device_name
from coffeetrace.cli.apps import app
from coffeetrace.console import friendly, say, setup_logging
from coffeetrace.credentials import new_device_secret
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.settings import Settings, get_settings
from coffeetrace.sql import load_queries
from coffeetrace.trace import lot_lookup, registry
from coffeetrace.trace.registry import get_cooperative_by_code

SQL = load_queries("coffeetrace.api", "cli.sql")


def _lots(conn, refs: list[str], cooperative: str | None) -> list[dict]:
    found = []
    for ref in refs:
        lot = lot_lookup.find_lot(conn, ref, cooperative_code=cooperative)
        found.append(conn.execute(SQL["lot_for_label"], {"id": lot["id"]}).fetchone())
    return found


@app.command()
@friendly
def qr(
    lot: Annotated[str, typer.Argument(help="Lot public id or lot code.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="png or svg.")] = "png",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File (default LOT.FORMAT).")
    ] = None,
    cooperative: Annotated[
        str | None, typer.Option("--coop", help="Cooperative code, when codes clash.")
    ] = None,
    scale: Annotated[int, typer.Option(help="Pixels (PNG) per module.")] = 10,
) -> None:
    """Write a lot's QR code (GS1 Digital Link when its product has a GTIN)."""

    if fmt not in ("png", "svg"):
        raise ValidationFailed("--format must be png or svg")
    settings = get_settings()
    with db.connect(settings.effective_database_url()) as conn:
        (row,) = _lots(conn, [lot], cooperative)
    uri = qrcodes.lot_uri(settings.public_base_url, row)
    target = out or Path(f"{row['code']}.{fmt}")
    target.write_bytes(qrcodes.render(uri, fmt, scale=scale))  # type: ignore[arg-type]
    say(f"{target}: {uri}")


@app.command()
@friendly
def labels(
    lots: Annotated[list[str], typer.Argument(help="Lot public ids or codes.")],
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("labels.pdf"),
    cooperative: Annotated[str | None, typer.Option("--coop")] = None,
) -> None:
    """Write an A4 PDF sheet of labels (QR, lot code, product, harvest period)."""

    settings = get_settings()
    with db.connect(settings.effective_database_url()) as conn:
        rows = _lots(conn, lots, cooperative)
    out.write_bytes(render_labels(rows, settings.public_base_url))
    say(f"{out}: {len(rows)} label(s)")


apikey_app = typer.Typer(help="API keys of the cooperative API.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


@apikey_app.command("create")
@friendly
def apikey_create(
    coop: str = typer.Option(..., "--coop", help="Cooperative code."),
    role: str = typer.Option(..., "--role", help="admin, operator or read-only."),
    name: str = typer.Option("", "--name", help="What the key is for."),
) -> None:
    """Issue an API key; the token is printed once (stdout) and only its hash is stored."""

    settings = get_settings()
    with db.connect(settings.effective_database_url()) as conn:
        cooperative = get_cooperative_by_code(conn, coop)
        if cooperative is None:
            raise NotFound(f"no cooperative has the code {coop!r}")
        issued = create_api_key(conn, cooperative["id"], role, name)
        conn.commit()
    say(f"API key {issued.row['prefix']} ({role}) for {coop}; keep it, it is not shown again:")
    print(issued.token)


device_app = typer.Typer(
    help="Devices and their broker credentials (applied to the broker "
    "at once with COFFEETRACE_MQTT_BROKER_AUTH=dynsec).",
    no_args_is_help=True,
)
app.add_typer(device_app, name="device")


def _device_change(change):
    """Run `change(conn, settings, control)` in one transaction: rolled back when the
    broker does not confirm, so the registry and the broker never disagree."""

    settings = get_settings()
    with (
        db.connect(
            settings.effective_database_url(), timeout_s=settings.db_connect_timeout_s
        ) as conn,
        conn.transaction(),
    ):
        result = change(conn, settings, BrokerControl(settings))
    return result, settings


def _applied(settings) -> str:
    mode = settings.mqtt_broker_auth
    if mode == "dynsec":
        return "applied to the broker"
    if mode == "files":
        return "run `coffeetrace broker-config` and reload the broker to apply it there"
    return "the broker takes anyone (COFFEETRACE_MQTT_BROKER_AUTH=none)"


@device_app.command("create")
@friendly
def device_create(
    coop: str = typer.Option(..., "--coop", help="Cooperative code."),
    kind: str = typer.Option(
        ..., "--kind", help="soil_node, weather_station, harvest_scale or phone."
    ),
    plot: str | None = typer.Option(None, "--plot", help="Plot id (uuid)."),
    tree: str | None = typer.Option(None, "--tree", help="Tree id (uuid)."),
    device_id: str | None = typer.Option(
        None,
        "--id",
        help="The cooperative's own id for it (default: generated); the device's id is COOP.ID.",
    ),
) -> None:
    """Register a device; its MQTT password is printed once (stdout)."""

    def change(conn, settings, control):
        check_device_name(settings, device_id)
        cooperative = registry.get_cooperative_by_code(conn, coop)
        if cooperative is None:
            raise NotFound(f"no cooperative has the code {coop!r}")
        issued = registry.register_device(
            conn,
            cooperative["id"],
            kind,
            plot_id=UUID(plot) if plot else None,
            tree_id=UUID(tree) if tree else None,
            device_id=device_id,
            secret=new_device_secret(),
        )
        control.upsert_device(issued.username, issued.password)
        return issued

    issued, settings = _device_change(change)
    say(
        f"device {issued.username} ({kind}) for {coop}, {_applied(settings)}; its MQTT "
        "password (user name and client id: the device id) is not shown again:"
    )
    print(issued.password)


@device_app.command("rotate")
@friendly
def device_rotate(
    device_id: str = typer.Argument(..., help="The device's whole id (COOP.ID)."),
) -> None:
    """Issue a new MQTT password (printed once, stdout); the old one stops working."""

    def change(conn, settings, control):
        device = registry.get_device_cooperative(conn, device_id)
        issued = registry.rotate_device_credential(
            conn, device["cooperative_id"], device_id, secret=new_device_secret()
        )
        control.upsert_device(device_id, issued.password, active=device["active"])
        return issued

    issued, settings = _device_change(change)
    say(f"new password of {device_id}, {_applied(settings)}; it is not shown again:")
    print(issued.password)


def _set_active(device_id: str, active: bool) -> None:
    def change(conn, settings, control):
        device = registry.get_device_cooperative(conn, device_id)
        registry.set_device_active(conn, device["cooperative_id"], device_id, active)
        control.set_device_active(device_id, active)

    _, settings = _device_change(change)
    say(f"device {device_id} {'enabled' if active else 'disabled'}, {_applied(settings)}")


@device_app.command("disable")
@friendly
def device_disable(device_id: str = typer.Argument(..., help="Device id.")) -> None:
    """Disable a device: the broker refuses it, ingest drops its messages."""
    _set_active(device_id, False)


@device_app.command("enable")
@friendly
def device_enable(device_id: str = typer.Argument(..., help="Device id.")) -> None:
    """Enable a disabled device again, with its current credential."""
    _set_active(device_id, True)


@app.command("api")
@friendly
def serve_api(
    host: str | None = typer.Option(None, help="Default COFFEETRACE_API_HOST."),
    port: int | None = typer.Option(None, help="Default COFFEETRACE_API_PORT."),
    workers: int = typer.Option(1, help="Worker processes."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Serve the API alone with uvicorn (production; the database must be reachable)."""

    setup_logging(verbose)
    settings = get_settings()
    db.check_database(settings.effective_database_url(), settings.db_connect_timeout_s)
    uvicorn.run(
        "coffeetrace.api.app:create_app",
        **uvicorn_options(settings, host=host, port=port, workers=workers, verbose=verbose),
    )


def uvicorn_options(
    settings: Settings, *, host: str | None, port: int | None, workers: int, verbose: bool
) -> dict[str, Any]:
    """How `coffeetrace api` runs uvicorn (the page benchmark serves its app the same way)."""
    return dict(
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        timeout_worker_healthcheck=settings.api_worker_healthcheck_s,
        proxy_headers=True,
        forwarded_allow_ips=settings.api_forwarded_allow_ips,
        timeout_keep_alive=settings.api_keep_alive_s,
        http=GuardedHTTPProtocol,
        limit_concurrency=settings.api_limit_concurrency or None,
        backlog=settings.api_backlog,
        h11_max_incomplete_event_size=settings.api_max_header_bytes,
        log_level="info" if verbose else "warning",
        access_log=verbose,
    )
