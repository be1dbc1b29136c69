#!/usr/bin/env bash
# Screenshots of every studio panel under a virtual X server (Xvfb), for the README.
#   scripts/screenshots.sh [--out docs/screenshots] [--checkpoint PATH] [--steps 40]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" scripts/screenshots.py "$@"
