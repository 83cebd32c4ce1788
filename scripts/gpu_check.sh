#!/usr/bin/env bash
# GPU check (issue 10): ScoreVI-Koopa on ETTh2, GPU vs CPU at the same batch, deterministic vs
# ScoreVI step-time ratio, bf16 autocast, predict throughput, peak GPU memory, and the vision
# paper-scale check (ResNet-101) -> docs/results/gpu.json + gpu.md. About 3-4 minutes on one H100.
# Without a GPU it runs a CPU smoke test of the same code (tiny model) into $OUT_CPU.
#
#   scripts/gpu_check.sh                 # extra arguments go to `forecasting bench gpu`
#   OUT=/tmp/x scripts/gpu_check.sh --steps 50
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  "$PY" -m forecasting bench gpu --device cuda --out "${OUT:-docs/results}" "$@"
else
  echo "gpu_check: no CUDA device; running the CPU smoke test" >&2
  "$PY" -m forecasting bench gpu --device cpu --quick --out "${OUT_CPU:-${TMPDIR:-/tmp}/gpu_check_cpu}" "$@"
fi
