#!/usr/bin/env bash
# Legibility of a textgen-tiny model on the held-out synthetic prompts (seed 31337: never used for training).
#
# 1. recipes/study.py --model: the product path (prompt -> rule planner -> glyph -> model) with 10 steps CFG 1 and
#    30 steps CFG 2, the held-out samples' own layouts, the glyph blanked (ablation), a 16-prompt grid;
# 2. OCR-verified best-of-4 on the first $BEST_N prompts (textgen evaluate --best-of 4);
# 3. the new user's test: 'A poster that says "WORD"' for 10 words x 8 seeds (recipes/open_test.py);
# 4. Sentence Accuracy against box height (recipes/height_curve.py): the smallest legible height.
# Everything lands in $OUT. Usage: MODEL=textgen/weights/textgen-tiny OUT=runs/eval [DATA=data/study] [N=50]
#   [BEST_N=20] [ARM=aligned_no_controlnet] bash recipes/eval_tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-textgen/weights/textgen-tiny}
OUT=${OUT:-runs/eval}
DATA=${DATA:-data/study}
N=${N:-50}
BEST_N=${BEST_N:-20}
ARM=${ARM:-aligned_no_controlnet}  # the sampler of the arm: 10 steps CFG 1 (+ 30 steps CFG 2)
export OMP_NUM_THREADS=${THREADS:-1}
mkdir -p "$OUT"

python recipes/study.py "$ARM" --model "$MODEL" --data "$DATA" --runs "$OUT/study" --eval-n "$N" --ablation
head -n "$BEST_N" "$DATA/heldout128.jsonl" >"$OUT/best_of_prompts.jsonl"
textgen evaluate --prompts "$OUT/best_of_prompts.jsonl" --model "$MODEL" --local-files-only --seed 0 \
  --best-of 4 --threads 1 -o "$OUT/best_of_4"
python recipes/open_test.py --model "$MODEL" --out "$OUT/open_test" | tee "$OUT/open_test.md"
report=$(ls -d "$OUT"/study/*/eval_planned | head -1)
own=$(ls -d "$OUT"/study/*/eval_own_layout | head -1)
python recipes/height_curve.py "$report:$DATA/heldout128.jsonl" "$own:$DATA/heldout128_layouts.jsonl" \
  --model "$MODEL" --json "$OUT/height_curve.json" | tee "$OUT/height_curve.md"
