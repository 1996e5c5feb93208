"""docs/architecture.md stays true: every folder, file and function it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
FOLDERS = (
    "coffeetrace",
    "trace",
    "ingest",
    "api",
    "simulators",
    "cli",
    "bench",
    "migrations",
    "tests",
)


def _sources() -> str:
    return "\n".join(
        p.read_text()
        for folder in FOLDERS
        if (ROOT / folder).exists()
        for p in (ROOT / folder).rglob("*.py")
    )


def test_every_named_folder_and_file_exists() -> None:
    for folder in re.findall(r"`([a-z_]+)/`", DOC):
        assert (ROOT / folder).is_dir() or any((ROOT / f / folder).is_dir() for f in FOLDERS), (
            folder
        )
    for name in set(re.findall(r"`([a-z_/]+\.(?:py|html|sql))`", DOC)):
        found = [p for folder in FOLDERS for p in (ROOT / folder).rglob(Path(name).name)]
        assert found, f"docs/architecture.md names {name}, which does not exist"


def test_every_named_function_exists() -> None:
    path = DOC.split("## One harvest")[1]
    code = _sources()
    names = set(re.findall(r"`((?:[A-Z]\w+\.)?_?[a-z]\w+)`", path))
    names -= {"seq", "ts", "tree", "cherry_kg", "harvest_events", "done"}
    names -= {"ingest_messages", "ingest_seq_ranges", "ingest_text_keys"}  # tables, a view
    assert len(names) > 10  # the check reads the walk-through, not an empty match
    for name in sorted(names):
        last = name.split(".")[-1]
        assert re.search(rf"(def|class) {re.escape(last)}\b", code), (
            f"docs/architecture.md names {name}, which is defined nowhere"
        )
