"""Fixtures of the foundation tests: the environment the CLI tests run `coffeetrace` in."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "COFFEETRACE_DATABASE_URL": db_url,
        "COFFEETRACE_DATA_DIR": str(tmp_path / "data"),  # where the `keys` fixture keeps them
    }
