#!/usr/bin/env bash
# The legibility study and the candidate's long run on one GPU, in one go (about 8-9 minutes on an H200).
#
# 1. data: the study's training sets (textgen synth, simple and easy), held-out prompts, decoded caches;
# 2. the long run: $FINAL from scratch for $STEPS steps at batch $BATCH (bf16), capped at $FINAL_SECONDS of
#    training, evaluated on the held-out prompts (planned layouts, own layouts, glyph blanked) and saved;
# 3. meanwhile every study arm from scratch at $STUDY_STEPS x $STUDY_BATCH, $PARALLEL at a time, each evaluated
#    the same way (recipes/study.py); arms still running at $DEADLINE seconds are stopped and reported missing;
# 4. $OUT gets the results table, every arm's result.json, log and grid, and the long run's pipeline folder
#    (tar, split into 15 MB parts: cat pipeline.tar.part-* | tar x).
#
# Usage: OUT=runs/gpu [WHEELS=.whl] [RECOGNIZER=runs/recognizer] [FINAL=trial_curriculum] bash recipes/gpu_study.sh
# FINAL= (empty) runs the study alone; HARD_STOP=S stops everything still running S seconds after the start.
# Tested on CPU at toy sizes (tests/recipes/test_study.py): DEVICE=cpu STEPS=2 STUDY_STEPS=2 N_TRAIN=64 ...
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
OUT=${OUT:-runs/gpu}
DATA=${DATA:-data/gpu_study}
RUNS=${RUNS:-runs/gpu_study}
FINAL=${FINAL-trial_curriculum}  # empty: no long run
STEPS=${STEPS:-10000}
BATCH=${BATCH:-64}
FINAL_SECONDS=${FINAL_SECONDS:-300}
STUDY_STEPS=${STUDY_STEPS:-1500}
STUDY_BATCH=${STUDY_BATCH:-32}
STUDY_SECONDS=${STUDY_SECONDS:-140}
# most telling first: arms still waiting at the deadline are the ones missing from the table
ARMS=${ARMS:-"trial base aligned no_controlnet easy wide curriculum trial_simple trial_curriculum_ocr \
aligned_no_controlnet ocr_loss no_text_weight mid_t aligned_curriculum"}
PARALLEL=${PARALLEL:-7}
DEADLINE=${DEADLINE:-470}
N_TRAIN=${N_TRAIN:-30000}
EVAL_N=${EVAL_N:-50}
GRID_N=${GRID_N:-16}
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
RECOGNIZER=${RECOGNIZER:-runs/recognizer}
HARD_STOP=${HARD_STOP:-}
TF32=${TF32:-}
mkdir -p "$OUT" "$RUNS"
log() { echo "[$(($(date +%s) - START)) s] $*" | tee -a "$OUT/gpu_study.log"; }

if [[ -n "${WHEELS:-}" ]]; then  # the device machine has no registry: wheels travel with the tree
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl >>"$OUT/gpu_study.log" 2>&1 || { log "wheel install failed"; exit 1; }
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi") \
  >"$RUNS/device.txt"
python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" >>"$RUNS/device.txt" 2>&1
log "$(tr '\n' ' ' <"$RUNS/device.txt")"

SIZE=${SIZE:-128}
STACK=${STACK:-}  # StackConfig fields over recipes/tiny_stack.json (the tests shrink the models)
common=(--data "$DATA" --n-train "$N_TRAIN" --eval-n "$EVAL_N" --device "$DEVICE" --mixed-precision "$PRECISION"
  --size "$SIZE"
  --workers 2 --grid-n "$GRID_N")
[[ -z "${NO_ABLATION:-}" ]] && common+=(--ablation)
[[ -n "$TF32" ]] && common+=(--allow-tf32)
[[ -n "$STACK" ]] && common+=(--stack "$STACK")
HARD_PID=""
if [[ -n "$HARD_STOP" ]]; then  # every arm this run started is stopped then, and what finished is collected
  ( sleep "$HARD_STOP"; log "hard stop"; pkill -TERM -f -- "$RUNS/" ) >/dev/null 2>&1 &
  HARD_PID=$!
fi
[[ -d "$RECOGNIZER" ]] && common+=(--recognizer "$RECOGNIZER")

# 1. Data and decoded caches (every arm loads them; none decodes on its own)
python3 recipes/study.py --prepare --data "$DATA" --n-train "$N_TRAIN" --eval-n "$EVAL_N" --workers "$WORKERS" \
  --size "$SIZE" ${STACK:+--stack "$STACK"} \
  >"$RUNS/prepare.log" 2>&1 || { log "data preparation failed"; tail -20 "$RUNS/prepare.log"; exit 1; }
log "data ready"

# 2. The long run, in the background
FINAL_PID=""
[[ -n "$FINAL" ]] && python3 recipes/study.py "$FINAL" --steps "$STEPS" --batch "$BATCH" --runs "$RUNS/final" \
  --max-train-seconds "$FINAL_SECONDS" "${common[@]}" >"$RUNS/final.log" 2>&1 &
[[ -n "$FINAL" ]] && FINAL_PID=$! && log "long run $FINAL started (pid $FINAL_PID)"

# 3. The study arms, $PARALLEL at a time
printf '%s\0' "${common[@]}" >"$RUNS/common.args"  # the shared options, whitespace-safe, for the workers
study_arm() {
  local common
  mapfile -d '' common <"$RUNS/common.args"
  python3 recipes/study.py "$1" --steps "$STUDY_STEPS" --batch "$STUDY_BATCH" --runs "$RUNS/study" \
    --max-train-seconds "$STUDY_SECONDS" "${common[@]}" >"$RUNS/study-$1.log" 2>&1 \
    && log "arm $1 done" || log "arm $1 FAILED (see study-$1.log)"
}
export -f study_arm log
export STUDY_STEPS STUDY_BATCH STUDY_SECONDS RUNS OUT START
# shellcheck disable=SC2086
printf '%s\n' $ARMS | timeout --signal=TERM $((DEADLINE - ($(date +%s) - START))) \
  xargs -P "$PARALLEL" -I{} bash -c 'study_arm "$@"' _ {}
log "study arms finished or stopped"
# wait for the long run (it stops itself at FINAL_SECONDS of training; evaluation follows)
remaining=$((DEADLINE + 60 - ($(date +%s) - START)))
( sleep $((remaining > 0 ? remaining : 1)); kill "$FINAL_PID" 2>/dev/null ) >/dev/null 2>&1 &
WATCH=$!
if [[ -n "$FINAL_PID" ]]; then
  wait "$FINAL_PID" && log "long run done" || log "long run FAILED or stopped (see final.log)"
fi
pkill -P "$WATCH" sleep 2>/dev/null; kill "$WATCH" 2>/dev/null

# 4. Collect (at most 8 files come back: the log, the tables, the results archive, the pipeline in parts)
{ python3 recipes/study.py --table --runs "$RUNS/study"; echo; python3 recipes/study.py --table --runs "$RUNS/final"; } \
  >"$OUT/study_table.md" 2>>"$OUT/gpu_study.log"
python3 - "$RUNS" <<'PY' 2>>"$OUT/gpu_study.log"
import sys
from pathlib import Path
from PIL import Image
for png in Path(sys.argv[1]).glob("*/*/grid.png"):  # JPEG grids keep the archive small
    Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=90)
    png.unlink()
PY
tar -czf "$OUT/results.tgz" --exclude='*/pipeline' --exclude='*/checkpoint-*' --exclude='*/controlnet' \
  --exclude='*/images' --exclude='*/thumbs' --exclude='*.html' -C "$RUNS" . 2>>"$OUT/gpu_study.log"
model=$(ls -d "$RUNS"/final/*/pipeline 2>/dev/null | head -1)
if [[ -n "$model" ]]; then
  tar -cf - -C "$(dirname "$model")" pipeline | split -b 15m - "$OUT/pipeline.tar.part-"
fi
log "collected: $(ls "$OUT" | tr '\n' ' ')"
if [[ -n "$HARD_PID" ]]; then pkill -P "$HARD_PID" sleep 2>/dev/null; kill "$HARD_PID" 2>/dev/null; fi
cat "$OUT/study_table.md"
