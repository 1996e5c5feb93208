"""Commands of this package: `qr`, `labels`, `apikey create`, `api`, `bench page`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, bench: typer.Typer, export: typer.Typer) -> None:
    """Add this package's commands to the CLI."""
    from coffeetrace.cli import friendly, say, setup_logging

    def _lots(conn, refs: list[str], cooperative: str | None) -> list[dict]:  # type: ignore[no-untyped-def]
        from coffeetrace.trace import lots

        from coffeetrace.sql import load_queries

        found = []
        for ref in refs:
            lot = lots.find_lot(conn, ref, cooperative_code=cooperative)
            found.append(conn.execute(load_queries("coffeetrace.api", "cli.sql")["lot_for_label"],
                                      {"id": lot["id"]}).fetchone())
        return found

    @app.command()
    @friendly
    def qr(lot: Annotated[str, typer.Argument(help="Lot public id or lot code.")],
           fmt: Annotated[str, typer.Option("--format", "-f", help="png or svg.")] = "png",
           out: Annotated[Path | None, typer.Option("--out", "-o",
                                                    help="File (default LOT.FORMAT).")] = None,
           cooperative: Annotated[str | None, typer.Option(
               "--coop", help="Cooperative code, when codes clash.")] = None,
           scale: Annotated[int, typer.Option(help="Pixels (PNG) per module.")] = 10) -> None:
        """Write a lot's QR code (GS1 Digital Link when its product has a GTIN)."""
        from coffeetrace.api import qr as qrcodes

        from coffeetrace import db
        from coffeetrace.errors import ValidationFailed
        from coffeetrace.settings import get_settings

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
    def labels(lots: Annotated[list[str], typer.Argument(help="Lot public ids or codes.")],
               out: Annotated[Path, typer.Option("--out", "-o")] = Path("labels.pdf"),
               cooperative: Annotated[str | None, typer.Option("--coop")] = None) -> None:
        """Write an A4 PDF sheet of labels (QR, lot code, product, harvest period)."""
        from coffeetrace.api.labels import render_labels

        from coffeetrace import db
        from coffeetrace.settings import get_settings

        settings = get_settings()
        with db.connect(settings.effective_database_url()) as conn:
            rows = _lots(conn, lots, cooperative)
        out.write_bytes(render_labels(rows, settings.public_base_url))
        say(f"{out}: {len(rows)} label(s)")

    apikey_app = typer.Typer(help="API keys of the cooperative API.", no_args_is_help=True)
    app.add_typer(apikey_app, name="apikey")

    @apikey_app.command("create")
    @friendly
    def apikey_create(coop: str = typer.Option(..., "--coop", help="Cooperative code."),
                      role: str = typer.Option(..., "--role", help="admin, operator or read-only."),
                      name: str = typer.Option("", "--name", help="What the key is for.")) -> None:
        """Issue an API key; the token is printed once (stdout) and only its hash is stored."""
        from coffeetrace.api.auth import create_api_key
        from coffeetrace.trace.registry import get_cooperative_by_code

        from coffeetrace import db
        from coffeetrace.errors import NotFound
        from coffeetrace.settings import get_settings

        settings = get_settings()
        with db.connect(settings.effective_database_url()) as conn:
            cooperative = get_cooperative_by_code(conn, coop)
            if cooperative is None:
                raise NotFound(f"no cooperative has the code {coop!r}")
            issued = create_api_key(conn, cooperative["id"], role, name)
            conn.commit()
        say(f"API key {issued.row['prefix']} ({role}) for {coop}; keep it, it is not shown again:")
        print(issued.token)

    @app.command("api")
    @friendly
    def serve_api(host: str | None = typer.Option(None, help="Default COFFEETRACE_API_HOST."),
                  port: int | None = typer.Option(None, help="Default COFFEETRACE_API_PORT."),
                  workers: int = typer.Option(1, help="Worker processes."),
                  verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
        """Serve the API alone with uvicorn (production; the database must be reachable)."""
        import uvicorn

        from coffeetrace import db
        from coffeetrace.settings import get_settings

        setup_logging(verbose)
        settings = get_settings()
        db.check_database(settings.effective_database_url(), settings.db_connect_timeout_s)
        uvicorn.run("coffeetrace.api.app:create_app", factory=True,
                    host=host or settings.api_host, port=port or settings.api_port,
                    workers=workers, proxy_headers=True, log_level="info" if verbose else "warning",
                    access_log=verbose)

    @bench.command("page")
    @friendly
    def bench_page(trees: int = typer.Option(1_000_000, help="Trees in the store."),
                   lot_trees: int = typer.Option(1000, help="Trees in the benchmarked lot."),
                   duration: float = typer.Option(10.0, help="Seconds per measurement."),
                   connections: int = typer.Option(64, help="Concurrent connections."),
                   keep: bool = typer.Option(False, help="Keep the benchmark database.")) -> None:
        """Provenance page requests/s and p99, cold and warm, against a bare endpoint."""
        from coffeetrace.api.bench import run_page_bench

        from coffeetrace.settings import get_settings

        setup_logging()
        run_page_bench(get_settings(), trees=trees, lot_trees=lot_trees, duration_s=duration,
                       connections=connections, keep=keep, say=say)
