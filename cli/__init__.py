"""The `coffeetrace` command: the composition root.

The only package that imports every other (ground `coffeetrace.*`, the domain `trace`,
the edges `api`, `ingest`, `simulators`); nothing imports it. Each module here holds the
commands of one part as module-level functions, registered on the apps of `apps.py` when
imported below.

Other installed distributions add commands through the `coffeetrace.commands` entry point
group: each entry point is a function called with the `coffeetrace` app (the benchmarks,
bench/ in the repository, add `coffeetrace bench ...` so).
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

from coffeetrace.cli import (
    api,
    coops,
    dds,
    dds_references,
    dds_submit,
    ingest,
    organisations,
    shipments,
    simulators,
    stack,
    trace,
    users,
)
from coffeetrace.cli.apps import app, export_app

__all__ = [
    "api",
    "app",
    "coops",
    "dds",
    "dds_references",
    "dds_submit",
    "export_app",
    "ingest",
    "main",
    "organisations",
    "shipments",
    "simulators",
    "stack",
    "trace",
    "users",
]

COMMANDS_GROUP = "coffeetrace.commands"


def _add_installed_commands() -> None:
    """Call every `coffeetrace.commands` entry point with the app (in name order)."""
    for point in sorted(entry_points(group=COMMANDS_GROUP), key=lambda p: p.name):
        point.load()(app)


_add_installed_commands()


def main() -> None:
    sys.exit(app())
