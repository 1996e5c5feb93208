"""pyproject.toml and bench/pyproject.toml install without setuptools warnings: the licence
is an SPDX expression (not the deprecated table), and every folder Python could import
below a package (sql/, templates/, ... hold data, not code) is listed in `packages`, which
setuptools otherwise warns it would leave out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = [ROOT / "pyproject.toml", ROOT / "bench" / "pyproject.toml"]


def _package_path(package: str, package_dir: dict[str, str], root: Path) -> Path:
    """The folder of `package`, as setuptools maps it (the longest package-dir prefix)."""
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        mapped = package_dir.get(".".join(parts[:n]))
        if mapped is not None:
            return root.joinpath(mapped, *parts[n:])
    return root.joinpath(*parts)


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_folder_of_packaged_data_is_a_listed_package(pyproject: Path) -> None:
    """What setuptools checks: a data file that package-data includes from a sub-folder of
    a package sits in a package of its own, listed (else "Package ... is absent from the
    `packages` configuration")."""
    setuptools = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    package_dir = setuptools["package-dir"]
    assert set(package_dir) <= listed
    missing = set()
    for package in listed:
        base = _package_path(package, package_dir, pyproject.parent)
        patterns = setuptools["package-data"].get("*", []) + setuptools["package-data"].get(
            package, []
        )
        for pattern in patterns:
            for path in base.glob(pattern):
                folder = path.parent.relative_to(base).parts
                if path.is_file() and folder and ".".join([package, *folder]) not in listed:
                    missing.add(".".join([package, *folder]))
    assert sorted(missing) == []


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_licence_is_an_spdx_string(pyproject: Path) -> None:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    assert data["project"]["license"] == "Apache-2.0"
    # setuptools reads the SPDX string from 77 on
    assert any(r.startswith("setuptools>=77") for r in data["build-system"]["requires"])
