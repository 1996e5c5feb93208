"""Commands of the whole stack: `migrate` and `up`."""

from __future__ import annotations

import typer

from coffeetrace.cli.apps import app
from coffeetrace.cli.runner import run_migrations
from coffeetrace.cli.runner import up as run_up
from coffeetrace.console import friendly, say, setup_logging
from coffeetrace.embedded import database_url_for_command
from coffeetrace.settings import get_settings


@app.command()
@friendly
def migrate() -> None:
    """Apply pending database migrations (safe to run twice)."""
    setup_logging()
    settings = get_settings()
    with database_url_for_command(settings) as url:
        applied = run_migrations(settings.model_copy(update={"database_url": url}))
    say(f"applied: {', '.join(applied) if applied else 'nothing pending'}")


@app.command()
@friendly
def up(
    demo: bool = typer.Option(
        False, "--demo", help="Seed a demo cooperative and run the farm simulator."
    ),
) -> None:
    """Run the whole stack on this machine (embedded servers unless URLs are configured)."""
    setup_logging()
    run_up(get_settings(), demo=demo, say=say)
