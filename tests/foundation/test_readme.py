"""The README stays true: its settings table and commands match the code."""

from __future__ import annotations

import re
from pathlib import Path

from coffeetrace.settings import settings_markdown

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_settings_class() -> None:
    table = README.split("<!-- settings-table:start -->")[1].split("<!-- settings-table:end -->")[0]
    assert table.strip() == settings_markdown().strip(), "run scripts/update-readme-settings"


def test_quick_start_has_exactly_two_commands_that_exist() -> None:
    quick = README.split("## Quick start")[1].split("```sh")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"


def test_linked_docs_exist() -> None:
    for link in re.findall(r"\]\((docs/[^)#]+)\)", README):
        assert (ROOT / link).exists(), f"README links to missing {link}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "./scripts/test" in (ROOT / ".ci/run").read_text()


def test_every_command_in_the_readme_exists() -> None:
    from typer.testing import CliRunner

    from coffeetrace import cli

    table = README.split("## Commands")[1].split("## Configuration")[0]
    invocations: set[tuple[str, ...]] = set()
    for cell in re.findall(r"^\| `coffeetrace ([^`]+)`(?: / `([^`]+)`)?", table, re.M):
        for text in cell:
            words = [w for w in text.split() if re.fullmatch(r"[a-z][a-z-]*", w)]
            if words and "|" not in words[-1]:
                invocations.add(
                    tuple(words[:2]) if words[0] in ("bench", "export", "apikey") else (words[0],)
                )
    for sub in ("ingest", "ingest-flood", "trace", "page", "seed"):
        invocations.add(("bench", sub))
    runner = CliRunner()
    for words in sorted(invocations):
        result = runner.invoke(cli.app, [*words, "--help"])
        assert result.exit_code == 0, f"coffeetrace {' '.join(words)}: {result.output}"
