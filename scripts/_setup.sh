# Sourced by scripts/demo and scripts/test: make .venv with the project installed, and the
# benchmarks (bench/, a distribution of their own: `coffeetrace bench ...`) beside it.
# Re-installs only when pyproject.toml or bench/pyproject.toml changed since the last install.
set -euo pipefail
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "coffeetrace needs Python 3.11 or newer (found: $("$PY" --version 2>&1)); set PYTHON=..." >&2
    exit 1
fi
extras=${1:-}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ bench/pyproject.toml -nt "$stamp" ]; then
    echo "setting up .venv (first run takes a minute)..." >&2
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}" >&2
    .venv/bin/python -m pip install -q -e bench/ >&2
    touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
