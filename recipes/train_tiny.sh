#!/usr/bin/env bash
# textgen-tiny: the small text-painting model trained from scratch on CPU (the study's winner, recipes/README.md).
# A glyph-input UNet without ControlNet (recipes/tiny_stack.json), the glyph = the ink each synthetic sample was
# drawn with (--glyph_source mask: the condition lies on the painted strokes), the training set decoded once into
# memory (--in_memory). Resumable: rerun the same command to continue from the latest checkpoint in $RUN. When the
# run reaches $STEPS (or is rerun with STEPS=<step of its latest checkpoint>) it writes $RUN/pipeline, the folder
# textgen ships as textgen/weights/textgen-tiny.
# Usage: DATA=data RUN=runs/tiny THREADS=2 STEPS=1500 bash recipes/train_tiny.sh   (1500: the shipped model)
# To continue from a saved model instead of from scratch (e.g. the shipped one on a fresh machine, where the run's
# checkpoints are gone): FROM=textgen/weights/textgen-tiny RUN=runs/tiny-more bash recipes/train_tiny.sh
# A decaying learning rate over a planned number of steps: add LR_SCHEDULE=cosine STEPS=1300 (keep STEPS on resumes).
# EDIT=1: one model that generates and edits: the UNet also takes the masked image and the mask (from scratch:
# recipes/tiny_stack_edit.json; with FROM: the loaded UNet is widened, the new inputs starting at zero).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data}
RUN=${RUN:-runs/tiny}
THREADS=${THREADS:-2}
STEPS=${STEPS:-100000}
FROM=${FROM:-}
LR_SCHEDULE=${LR_SCHEDULE:-constant_with_warmup}  # e.g. cosine: decays to 0 at $STEPS (set STEPS to the planned end)
LR=${LR:-1e-3}
WARMUP=${WARMUP:-100}  # linear warm-up steps
SEED=${SEED:-0}  # training seed (noise, batch order); a FROM= run can take a new one to see the data in a new order
TEXT_WEIGHT=${TEXT_WEIGHT:-3}  # loss weight on the text cells: 1 + this
# uniform: the shipped model; logit_normal (mid noise trained most) read 4.5x more lines at 500 steps in the study
TIMESTEPS=${TIMESTEPS:-uniform}
EDIT=${EDIT:-0}
WHOLE_MASK=${WHOLE_MASK:-0.5}  # with EDIT=1: share of samples masked whole (generation); the rest mask text boxes
# Sizes below are the shipped model's; the test suite shrinks them to run the recipe in seconds.
STACK=${STACK:-recipes/tiny_stack.json}
N_TRAIN=${N_TRAIN:-30000}
N_VAL=${N_VAL:-64}
BATCH=${BATCH:-16}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-100}
VALIDATE_EVERY=${VALIDATE_EVERY:-250}

# 1. Synthetic triples with their stored ink (seeded; a rerun skips finished shards): training and validation sets.
textgen synth -o "$DATA/synth128" --n "$N_TRAIN" --size 128 --seed 1000 --mode simple --workers "$THREADS"
textgen synth -o "$DATA/synth128_val" --n "$N_VAL" --size 128 --seed 777777 --shard-size 64

# 2. Glyph-input UNet + character-level CLIP text encoder, trained jointly from scratch (or from $FROM).
if [[ "$EDIT" == 1 && -z "$FROM" && "$STACK" == recipes/tiny_stack.json ]]; then STACK=recipes/tiny_stack_edit.json; fi
if [[ -n "$FROM" ]]; then START=(--pretrained_model "$FROM" --local_files_only); else START=(--init_config "$STACK"); fi
if [[ "$EDIT" == 1 && -n "$FROM" ]]; then START+=(--add_edit_inputs); fi
OMP_NUM_THREADS="$THREADS" exec textgen train-controlnet \
  "${START[@]}" --train_unet --train_text_encoder \
  --train_shards "$DATA/synth128" --resolution 128 --glyph_source mask --in_memory \
  --memory_cache "$DATA/decoded" --dataloader_num_workers "$THREADS" \
  --train_batch_size "$BATCH" --learning_rate "$LR" --lr_scheduler "$LR_SCHEDULE" --lr_warmup_steps "$WARMUP" \
  --max_grad_norm 1 --use_ema --ema_decay 0.999 --caption_dropout 0.1 --text_loss_weight "$TEXT_WEIGHT" \
  --timestep_sampling "$TIMESTEPS" --whole_mask_share "$WHOLE_MASK" --output_dir "$RUN" --seed "$SEED" --max_train_steps "$STEPS" \
  --checkpointing_steps "$CHECKPOINT_EVERY" --checkpoints_total_limit 2 \
  --validation_steps "$VALIDATE_EVERY" --validation_shards "$DATA/synth128_val" --num_validation_samples 8 \
  --validation_inference_steps 10 --validation_guidance_scale 1 \
  --num_threads "$THREADS" --mixed_precision no --report_to tensorboard \
  --save_dtype fp16 --resume_from_checkpoint latest
