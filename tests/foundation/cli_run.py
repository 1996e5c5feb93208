"""Running the `coffeetrace` command in-process, for the CLI tests of this folder (their
environment: the `env` fixture of conftest.py)."""

from __future__ import annotations

from typer.testing import CliRunner

from coffeetrace import cli


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    """The command's output; it must exit with `code`."""
    result = CliRunner().invoke(cli.app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output
