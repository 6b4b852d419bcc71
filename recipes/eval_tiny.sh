#!/usr/bin/env bash
# Legibility of textgen-tiny on a held-out synthetic prompt set (seed 31337: never used for training or validation).
# Three runs of `textgen evaluate`: the product (planned layout + glyph), the glyph condition blanked (ablation),
# and OCR-verified best-of-4. Reports (JSON + HTML) land in $OUT/{glyph,no_glyph,best_of_4}.
# Usage: DATA=data OUT=runs/eval [MODEL=textgen/weights/textgen-tiny] [N=100] bash recipes/eval_tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data}
OUT=${OUT:-runs/eval}
MODEL=${MODEL:-textgen/weights/textgen-tiny}
N=${N:-100}
THREADS=${THREADS:-2}
export OMP_NUM_THREADS="$THREADS"

textgen synth -o "$DATA/heldout128" --n 200 --size 128 --seed 31337 --shard-size 200
python recipes/heldout_prompts.py "$DATA/heldout128" -o "$DATA/heldout128.jsonl" --limit "$N"

common=(--prompts "$DATA/heldout128.jsonl" --model "$MODEL" --local-files-only --seed 0 --threads 1)
textgen evaluate "${common[@]}" -o "$OUT/glyph"
textgen evaluate "${common[@]}" --control-scale 0 -o "$OUT/no_glyph"
textgen evaluate "${common[@]}" --best-of 4 -o "$OUT/best_of_4"
