#!/usr/bin/env bash
# One prepared command for a lent GPU (issue 14, item 4); under 8 minutes on an H100/H200.
#
#   bash benchmarks/gpu_check.sh [--quick] [--out DIR] [other benchmarks/gpu_check.py options]
#
# Writes DIR/gpu_check.json, DIR/gpu_check.md and DIR/gpu_check.log; DIR defaults to $OUT when
# that is set (the device tool's result folder), else gpu_check_out. --quick runs every section on
# the CPU with tiny sizes (a smoke run of the same code, well under a minute).
#
# Installs only what is missing and never replaces torch: igm runs from src/ (PYTHONPATH) when it
# imports; otherwise `pip install -e .` runs with a constraints file pinning the torch already there
# (as scripts/_env.sh does). PYTHON picks the interpreter (default python3); GPU_CHECK_BUDGET_S the
# seconds for setup and sections together (default 450; --quick 240).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-gpu_check_out}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-450}"
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT_DIR="$2"; shift 2 ;;
        --out=*) OUT_DIR="${1#--out=}"; shift ;;
        --quick) ARGS+=("--quick"); BUDGET_S="${GPU_CHECK_BUDGET_S:-240}"; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
T0=$SECONDS
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
: > "$LOG"
say() { echo "[gpu_check.sh] $*" | tee -a "$LOG"; }

export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# one interpreter start: is torch there (never installed here), which versions, does igm import from src/?
"$PY" -W ignore - <<'EOF' 2>&1 | tee -a "$LOG"
import sys
try:
    import torch
except ImportError:
    sys.exit(3)
print(f"[gpu_check.sh] python {sys.version.split()[0]} ({sys.executable}); torch {torch.__version__}; "
      f"cuda available: {torch.cuda.is_available()}")
try:
    import numpy, yaml, igm.train, igm.metrics, igm.nn  # noqa: F401,E401
except ImportError as err:
    print(f"[gpu_check.sh] igm does not import from src/: {err}")
    sys.exit(4)
EOF
STATUS=${PIPESTATUS[0]}
if [ "$STATUS" -eq 3 ]; then
    say "no torch in $PY: install a (CUDA) torch first; this script never installs torch"
    exit 3
elif [ "$STATUS" -ne 0 ]; then
    say "pip install -e . with torch pinned to the installed version"
    CONSTRAINTS="$(mktemp)"
    echo "torch==$("$PY" -W ignore -c 'import torch; print(torch.__version__)')" > "$CONSTRAINTS"
    "$PY" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" -e "$ROOT" 2>&1 | tee -a "$LOG" \
        || say "pip install failed; the sections that need the missing packages will record errors"
    rm -f "$CONSTRAINTS"
fi
say "setup took $((SECONDS - T0)) s"

LEFT=$((BUDGET_S - (SECONDS - T0)))
"$PY" -u "$ROOT/benchmarks/gpu_check.py" --out "$OUT_DIR" --budget-s "$LEFT" ${ARGS[@]+"${ARGS[@]}"} 2>&1 | tee -a "$LOG"
RC=${PIPESTATUS[0]}
say "finished in $((SECONDS - T0)) s with status $RC; results: $OUT_DIR/gpu_check.json, $OUT_DIR/gpu_check.md"
exit "$RC"
