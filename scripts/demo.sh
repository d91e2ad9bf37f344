#!/usr/bin/env bash
# Quick start, command 1: install (into ./.venv) and run the main job.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
exec "$VENV/bin/igm" dirac "$@"
