#!/usr/bin/env bash
# Quick start, command 1: install (into ./.venv) and run the main job: SN-SMMD on the 8-Gaussian
# ring, about two minutes on one CPU core. Extra arguments are passed to `igm train` (e.g. train.steps=300).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
exec "$VENV/bin/igm" train --preset ring-sn-smmd --out "runs/ring-sn-smmd-$(date +%Y%m%d-%H%M%S)" "$@"
