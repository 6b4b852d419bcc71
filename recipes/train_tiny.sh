#!/usr/bin/env bash
# textgen-tiny: the small text-painting model trained from scratch on CPU (see recipes/README.md).
# Resumable: rerun the same command to continue from the latest checkpoint in $RUN.
# Usage: DATA=data RUN=runs/tiny THREADS=2 bash recipes/train_tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data}
RUN=${RUN:-runs/tiny}
THREADS=${THREADS:-2}

# 1. Synthetic triples (seeded; a rerun skips finished shards): 30k for training, 64 held out for validation.
textgen synth -o "$DATA/synth128" --n 30000 --size 128 --seed 1000 --mode simple
textgen synth -o "$DATA/synth128_val" --n 64 --size 128 --seed 777777 --shard-size 64

# 2. UNet + glyph ControlNet + character-level CLIP text encoder, trained jointly from scratch.
OMP_NUM_THREADS="$THREADS" exec textgen train-controlnet \
  --init_config recipes/tiny_stack.json --train_unet --train_text_encoder \
  --train_shards "$DATA/synth128" --resolution 128 \
  --train_batch_size 16 --learning_rate 1e-3 --lr_scheduler constant_with_warmup --lr_warmup_steps 100 \
  --max_grad_norm 1 --use_ema --ema_decay 0.999 --caption_dropout 0.1 \
  --output_dir "$RUN" --seed 0 --max_train_steps 100000 \
  --checkpointing_steps 100 --checkpoints_total_limit 2 \
  --validation_steps 500 --validation_shards "$DATA/synth128_val" --num_validation_samples 8 \
  --num_threads "$THREADS" --dataloader_num_workers 1 --mixed_precision no --report_to tensorboard \
  --resume_from_checkpoint latest
