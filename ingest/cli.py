"""Commands of this package for the `coffeetrace` CLI."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer, export: typer.Typer) -> None:
    """Add this package's commands to the CLI."""
