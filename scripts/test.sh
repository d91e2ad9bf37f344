#!/usr/bin/env bash
# Quick start, command 2: install (into ./.venv) and run the test suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
