#!/usr/bin/env bash
# The GPU rows of docs/benchmarks.md in one run, with random weights (speed does not depend on
# them): SAM2.1 large + open_clip ViT-L-14, bf16 and fp32, 480p and 1080p.
#   bench/gpu.sh [OUT_DIR]        (default bench/results)
# Each part runs under its own time limit (seconds: LIMIT_SAM2, LIMIT_TRIAL, LIMIT_POINTS,
# LIMIT_SWEEP), so one that fails or overruns does not cost the others; a short smoke test runs
# first and stops the whole run if the stack does not work on the device. Writes gpu.txt (device, versions),
# gpu.log (everything printed) and each benchmark's JSON into OUT_DIR.
set -u
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
log="$out/gpu.log"
: > "$log"
export PYTHONUNBUFFERED=1

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import sys, torch, sam2, open_clip, optuna; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'open_clip', open_clip.__version__, \
'optuna', optuna.__version__); print(torch.cuda.get_device_name(0))"
} > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt" | tee -a "$log"

part() {  # part NAME LIMIT_S COMMAND...
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$log"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=20 "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: rc=$rc in $((SECONDS - t0))s" | tee -a "$log"
  return "$rc"
}

part smoke 60 python3 -m bench sam2 --device cuda --model-size tiny --clip ViT-B-32 \
  --dtype bf16 --resolution 240p --seeds 1 --frames 4 --extract-frames 1 --points-per-side 8 \
  --output "$out/smoke.json" || { echo "smoke test failed: stopping" | tee -a "$log"; exit 1; }

part sam2 "${LIMIT_SAM2:-150}" python3 -m bench sam2 --device cuda --model-size large \
  --clip ViT-L-14 --dtype fp32,bf16 --resolution 480p,1080p --seeds 1,3,5 --frames 16 \
  --extract-frames 4 --points-per-side 8 --output "$out/sam2-cuda.json"

# one cached trial of the Ref-DAVIS17 base configuration over 10 videos, cold and warm
part trial "${LIMIT_TRIAL:-110}" python3 -m bench pipeline --backend sam2-clip \
  --device cuda --model-size large --clip ViT-L-14 --dtype bf16 --size 480p --videos 10 \
  --frames 10 --points 0

# the seed's 18 ablation points in order, end to end (device-hours per point)
part points "${LIMIT_POINTS:-110}" python3 -m bench pipeline --backend sam2-clip \
  --device cuda --model-size large --clip ViT-L-14 --dtype bf16 --size 480p --videos 3 \
  --frames 10 --points 18

part sweep "${LIMIT_SWEEP:-110}" python3 -m bench sweep --workers 1,2,4 --device cuda:0 \
  --backend sam2-clip --model-size large --clip ViT-L-14 --dtype bf16 --size 480p \
  --videos 3 --frames 8 --cells 4

cp bench/results/pipeline-*.json bench/results/sweep-*.json "$out"/ 2>/dev/null
ls -la "$out"
