#!/usr/bin/env bash
# GPU acceptance check (see benchmarks/gpu_acceptance.py) on a machine whose Python already has torch and
# transformers but no package index: the wheels it lacks (bitsandbytes, ir_measures, pytrec-eval-terrier, together
# ~43 MB) are installed from WHEELS (default .whl/) into a scratch folder when present.
# Fetch them on a machine with an index:  bash benchmarks/gpu_acceptance.sh --download
# Usage: benchmarks/gpu_acceptance.sh [--steps 10] [--out FILE]   (PYTHON=... to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
if [ "${1:-}" = "--download" ]; then
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        -d "$WHEELS" bitsandbytes==0.50.2 ir_measures==0.4.3 pytrec-eval-terrier==0.5.11
    exit 0
fi
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    SITE=$(mktemp -d)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 exec "$PYTHON" benchmarks/gpu_acceptance.py "$@"
