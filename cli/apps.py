"""The `coffeetrace` command and its groups; the modules beside this one add the commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="coffeetrace: per-tree coffee traceability.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
export_app = typer.Typer(help="Exports of a lot's history.", no_args_is_help=True)
app.add_typer(export_app, name="export")
keys_app = typer.Typer(
    help="Each cooperative's signing keys (files under COFFEETRACE_KEYS_DIR).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
