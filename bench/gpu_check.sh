#!/usr/bin/env bash
# The GPU checks, run on a lent CUDA machine (see the README, "GPU"): the CUDA training
# tests and the GPU rows of bench/train.py. The image there has torch; the wheels in .whl
# (duckdb, pydantic: see the README) are installed into /tmp/site first.
set -o pipefail
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 BLASE_PROGRESS=0
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_train_cuda.py tests/test_train.py 2>&1 | tee "$OUT/pytest.txt"
python3 bench/train.py --quick 2>&1 | tee "$OUT/bench_train.txt"
# distributed training: the 2-process gloo tests, then nccl with one process per GPU
python3 -m pytest -q -p no:cacheprovider tests/test_ddp.py 2>&1 | tee "$OUT/pytest_ddp.txt"
python3 bench/ddp.py --device cuda --rows 400000 2>&1 | tee "$OUT/bench_ddp.txt"
