#!/usr/bin/env bash
# GPU check (see benchmarks/gpu_check.py): fp16 + GradScaler + 8-bit AdamW training steps and one encoded shard on
# CUDA, compared with the CPU fp32 path at stated tolerances; without CUDA it runs the CPU half and exits 0.
# Usage: benchmarks/gpu_check.sh [--steps 5] [--docs 512]   (PYTHON=... to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "nvidia-smi not found: no NVIDIA driver on this machine"
fi
"$PYTHON" -c "import bitsandbytes" 2>/dev/null && echo "bitsandbytes: installed (8-bit AdamW on CUDA)" \
    || echo "bitsandbytes: not installed (torch AdamW on CUDA)"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TRANSFORMERS_VERBOSITY=error exec "$PYTHON" benchmarks/gpu_check.py "$@"
