#!/usr/bin/env bash
# Every GPU check the issues ask for, in one run on a lent GPU machine (about 9 minutes):
#   1. `forecasting bench gpu` (issue 10): ScoreVI-Koopa on ETTh2, GPU vs CPU, bf16, predict,
#      peak memory, and the vision paper-scale check on ResNet-101 (issue 7);
#   2. `forecasting bench vision --model vit_l_32` (issue 7: ViT-L/32, 306 M weights, one 80 GB GPU);
#   3. `forecasting bench inference --only cost` (issue 4: one ScoreVI iteration vs S SGD steps).
# Each check has its own time limit, so one that hangs cannot eat the others' time.
#
# Here, once (copies ETTh2.csv into .devcarry/, which git ignores and the device tool can carry):
#     scripts/device_check.sh --prepare
# Then one device call: command "scripts/device_check.sh", carry [".devcarry"], timeout_s 600.
# It needs only what GPU images ship (torch, torchvision, torchmetrics, pandas, PyYAML, tqdm,
# matplotlib): without polars the ETTh2 CSV is read with pandas. Results come back as
# $OUT/summary.md (every result table) and $OUT/device_check.tgz (JSON, Markdown and logs) —
# unpack the archive into docs/results/gpu/ and quote the device and this command beside the numbers.
# Without a GPU, DEVICE=cpu QUICK=1 runs the same steps as a small smoke test.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.devcarry

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p "$CARRY/data"
  grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >> .git/info/exclude
  cp "${DATA_DIR:-../shared/data}/ETTh2.csv" "$CARRY/data/"
  echo "prepared $CARRY/ ($(du -sh "$CARRY" | cut -f1)); carry it with the device call: carry [\"$CARRY\"]"
  exit 0
fi

PY=${PYTHON:-python3}
OUT=${OUT:-${TMPDIR:-/tmp}/device_check}
DEVICE=${DEVICE:-cuda}
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1
[ -f "$CARRY/data/ETTh2.csv" ] || { echo "no $CARRY/data/ETTh2.csv: run scripts/device_check.sh --prepare here first" >&2; exit 2; }

step() {  # name, time limit in seconds, forecasting arguments...
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): forecasting $*" | tee -a "$WORK/summary.md"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$PY" -m forecasting "$@" > "$WORK/$name.log" 2>&1
  echo "   exit $? after $((SECONDS - t0)) s" | tee -a "$WORK/summary.md"
  tail -n 3 "$WORK/$name.log"
}

"$PY" - <<'EOF' | tee "$WORK/summary.md"
import platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"python {platform.python_version()}, torch {torch.__version__}, {gpu}")
EOF
if [ -n "${QUICK:-}" ]; then
  step gpu 300 bench gpu --device "$DEVICE" --quick --data-dir "$CARRY/data" --out "$WORK/gpu"
  step vision 300 bench vision --device "$DEVICE" --model resnet18 --steps 1 --batch-size 2 --image-size 64 --out "$WORK/vision"
  step inference_cost 300 bench inference --only cost --device "$DEVICE" --out "$WORK/inference"
else
  step gpu 250 bench gpu --device "$DEVICE" --data-dir "$CARRY/data" --out "$WORK/gpu" --budget-s 230
  step vision 220 bench vision --device "$DEVICE" --model vit_l_32 --steps 5 --out "$WORK/vision"
  step inference_cost 90 bench inference --only cost --device "$DEVICE" --out "$WORK/inference"
fi
find "$WORK" -name '*.md' ! -name summary.md | sort | while read -r f; do
  printf '\n---- %s\n' "${f#"$WORK"/}"
  cat "$f"
done >> "$WORK/summary.md"
mkdir -p "$OUT"
cp "$WORK/summary.md" "$OUT/"
tar -czf "$OUT/device_check.tgz" -C "$WORK" .
echo "results: $OUT/summary.md, $OUT/device_check.tgz"
