#!/usr/bin/env bash
# The CUDA backend on a real GPU, in under ten minutes: the CUDA tests on the hardware (not the
# simulator), then benchmarks/gpu_check.py (forward and training step of configs B and C, LSTM and
# GRU, the char LM and streaming steps, against PyTorch's cuDNN on the same GPU; one table).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # OUT_DIR (default .) gets gpu_check.json and logs
#
# Needs an NVIDIA GPU with its driver, fastrnn installed with the cuda extra, and a CUDA build of
# PyTorch. Exits non-zero if a test fails or the two libraries disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
mkdir -p "$out"
python=${PYTHON:-python}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
NUMBA_ENABLE_CUDASIM=0 timeout 360 "$python" -m pytest -q -x -p no:cacheprovider \
    tests/test_cuda.py tests/test_cuda_stream.py tests/test_cuda_train.py 2>&1 \
    | tee "$out/gpu_tests.log"
NUMBA_ENABLE_CUDASIM=0 timeout 200 "$python" benchmarks/gpu_check.py \
    --json "$out/gpu_check.json" 2>&1 | tee "$out/gpu_check.log"
