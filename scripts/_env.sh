# Sourced by the quick-start scripts: make ./.venv with CPU torch and igm installed.
# - torch is installed as the pinned CPU wheel only when the environment has none;
#   an existing torch is pinned by a constraints file so nothing replaces it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IGM_VENV:-$ROOT/.venv}"
TORCH_VERSION="${IGM_TORCH_VERSION:-2.13.0}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    "$PY" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
fi
CONSTRAINTS="$(mktemp)"
echo "torch==$("$PY" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null)" > "$CONSTRAINTS"
STAMP="$VENV/.igm-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    "$PY" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" -e "$ROOT[test]" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    touch "$STAMP"
fi
rm -f "$CONSTRAINTS"
