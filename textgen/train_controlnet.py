"""Train a glyph ControlNet (optionally with its base UNet and text encoder) on the data stage's triple shards.

One script in the diffusers-example style (``parse_args(argv)`` + ``main(argv)``), also ``textgen
train-controlnet``. Two ways to start:

* ``--pretrained_model``: a diffusers Stable Diffusion folder or hub id (or a saved PosterPipeline folder). The base
  stays frozen in fp16/bf16 (per ``--mixed_precision``) and a ControlNet initialised from its UNet
  (``ControlNetModel.from_unet``) trains in fp32; ``--train_unet`` / ``--train_text_encoder`` unfreeze the others.
* ``--init_config '{"resolution": 128, "unet_channels": [64, 128, 256]}'``: the whole stack is built from scratch
  with :func:`textgen.models.build_stack` and trained jointly (``--train_unet``, usually ``--train_text_encoder``).
  This is how textgen's own small CPU model is made.

Each training sample is a triple from the shards (:mod:`data_prep.records`): the image, its training caption
(the form with the words, ``... that reads "OPEN"``) and its layout, from which the glyph image (black text on
white, the ControlNet's condition in ``[0, 1]``) is rendered on the fly at the training resolution inside the
DataLoader workers. The loss is diffusers' DDPM objective (target by the scheduler's prediction type: epsilon,
v_prediction or sample) with optional Min-SNR weighting.

Runs on CPU or GPUs through accelerate (``accelerate launch -m textgen.train_controlnet ...`` for several GPUs).
Checkpoints (``output_dir/checkpoint-STEP``) hold the trainable weights, optimizer, LR schedule, EMA, RNG and the
position in the data stream, so ``--resume_from_checkpoint latest`` continues exactly where the run stopped.
Outputs: ``output_dir/controlnet`` (diffusers ControlNet, safetensors) always; ``output_dir/pipeline`` (a complete
PosterPipeline folder) when the UNet or text encoder were trained; ``train_log.jsonl`` (step, loss, lr, seconds);
validation grids in ``output_dir/validation`` with their OCR scores; TensorBoard logs in ``output_dir/logs``.
See ``docs/training.md`` for the GPU command lines, memory recipes and the CPU from-scratch recipe.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from textgen.train_data import (
    GLYPH_SOURCES,
    GlyphTripleStream,
    MemoryTriples,
    _torch_iterable,
    _worker_init,
    check_captions,
    check_shards,
)

logger = logging.getLogger(__name__)
TIMESTEP_SAMPLING = ("uniform", "logit_normal")

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
LR_SCHEDULES = ("constant", "constant_with_warmup", "cosine", "linear", "cosine_with_restarts", "polynomial")
PRECISIONS = ("no", "fp16", "bf16")
SAVE_DTYPES = ("fp32", "fp16", "bf16")
STATE_NAME = "training_state.json"
EMA_NAME = "ema.safetensors"
RNG_NAME = "noise_rng_{rank}.safetensors"
LOG_NAME = "train_log.jsonl"
# Libraries a model_index.json may name for a component; anything else is refused (no arbitrary imports).
_COMPONENT_LIBRARIES = ("diffusers", "transformers", "textgen.models")


# ================================================================================================ options
@dataclass
class ModelArgs:
    """Which models to start from and which to train.

    Args:
        pretrained_model: Diffusers Stable Diffusion folder or hub id, or a saved PosterPipeline folder.
        init_config: A :class:`textgen.models.StackConfig` as JSON (or a path to a JSON file): build the whole
            stack from scratch instead.
        controlnet: ControlNet folder or hub id to start from (default: a PosterPipeline folder's own glyph
            ControlNet, else ``ControlNetModel.from_unet``).
        train_unet: Train the base UNet jointly with the ControlNet (needed from scratch).
        train_text_encoder: Train the text encoder too.
        local_files_only: Never touch the network when loading models.
    """

    pretrained_model: str | None = None
    init_config: str | None = None
    controlnet: str | None = None
    train_unet: bool = False
    train_text_encoder: bool = False
    local_files_only: bool = False

    def validate(self) -> None:
        if (self.pretrained_model is None) == (self.init_config is None):
            raise ValueError(
                "give exactly one of --pretrained_model (a base to start from) or --init_config (from scratch)"
            )
        if self.init_config is not None and not self.train_unet:
            raise ValueError(
                "--init_config builds the UNet from scratch: add --train_unet (a random frozen UNet learns nothing)"
            )

    def stack_config(self):
        """The :class:`textgen.models.StackConfig` of ``init_config`` (inline JSON or a file)."""
        from textgen.models import StackConfig

        text, source = self.init_config, "--init_config"
        if text is not None and not text.lstrip().startswith("{"):
            path = Path(text)
            if not path.is_file():
                raise FileNotFoundError(f"--init_config {text}: neither inline JSON nor an existing JSON file")
            text, source = path.read_text(encoding="utf-8"), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: invalid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object of StackConfig fields, got {type(data).__name__}")
        known = {f.name for f in fields(StackConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown StackConfig field(s) {unknown}; expected some of {sorted(known)}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return StackConfig(**data)


@dataclass
class DataArgs:
    """Training and validation data.

    Args:
        train_shards: Folders of ``*.tar`` triple shards, or tar files.
        resolution: Training side in pixels (default: the base's, ``unet.sample_size * vae factor``).
        caption_dropout: Probability of an empty prompt (teaches the unconditional branch for guidance).
        shuffle_buffer: Samples held in each worker's shuffle buffer.
        dataloader_num_workers: DataLoader worker processes (glyph rendering and decoding run there).
        validation_shards: Held-out shards whose first ``num_validation_samples`` layouts and captions are used.
        validation_layouts: A JSON list of ``{"prompt": ..., "layout": {...}}`` (or layouts with a caption).
        num_validation_samples: Layouts taken from ``validation_shards``.
        glyph_source: ``render`` (the glyph drawn from each layout, as at inference) or ``mask`` (the sample's stored
            ink, ``{key}.mask.png`` from ``textgen synth``: the condition lies exactly on the painted strokes).
        in_memory: Decode the whole training set once into tensors on the training device and draw batches by
            index (small sets: no DataLoader workers, no per-step decoding; what keeps a GPU busy).
        curriculum_shards: A first-stage training set (e.g. ``textgen synth --mode easy``) used for the first
            ``curriculum_steps`` steps (needs ``in_memory``).
        curriculum_steps: Steps trained on ``curriculum_shards`` before ``train_shards`` take over.
        memory_cache: Folder keeping the in-memory sets decoded (safetensors), for runs that share their data.
    """

    train_shards: list[str] = field(default_factory=list)
    resolution: int | None = None
    caption_dropout: float = 0.1
    shuffle_buffer: int = 1000
    dataloader_num_workers: int = 1
    validation_shards: list[str] | None = None
    validation_layouts: str | None = None
    num_validation_samples: int = 4
    glyph_source: str = "render"
    in_memory: bool = False
    curriculum_shards: list[str] | None = None
    curriculum_steps: int = 0
    memory_cache: str | None = None

    def validate(self) -> None:
        from data_prep.records import shard_paths

        if self.glyph_source not in GLYPH_SOURCES:
            raise ValueError(f"--glyph_source must be one of {GLYPH_SOURCES}, got {self.glyph_source!r}")
        if self.curriculum_steps < 0 or bool(self.curriculum_shards) != bool(self.curriculum_steps):
            raise ValueError("--curriculum_shards and --curriculum_steps (>= 1) go together")
        if self.curriculum_shards:
            if not self.in_memory:
                raise ValueError("--curriculum_shards needs --in_memory")
            shard_paths(self.curriculum_shards)
        if not self.train_shards:
            raise ValueError("--train_shards: give at least one folder of .tar shards or a .tar file")
        shard_paths(self.train_shards)  # FileNotFoundError naming the missing folder or file
        if self.validation_shards:
            shard_paths(self.validation_shards)
        if self.validation_layouts and not Path(self.validation_layouts).is_file():
            raise FileNotFoundError(f"--validation_layouts {self.validation_layouts}: no such file")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"--caption_dropout must be in [0, 1], got {self.caption_dropout}")
        if self.shuffle_buffer < 1 or self.dataloader_num_workers < 0 or self.num_validation_samples < 1:
            raise ValueError(
                "--shuffle_buffer and --num_validation_samples must be >= 1, --dataloader_num_workers >= 0"
            )
        if self.resolution is not None and self.resolution < 8:
            raise ValueError(f"--resolution must be >= 8 pixels, got {self.resolution}")


@dataclass
class OptimArgs:
    """Loss and optimiser.

    Args:
        train_batch_size: Samples per device per micro-batch.
        gradient_accumulation_steps: Micro-batches per optimizer step.
        learning_rate: Peak learning rate (after warm-up).
        scale_lr: Multiply the learning rate by batch size x accumulation x processes.
        lr_scheduler: diffusers ``get_scheduler`` name.
        lr_warmup_steps: Linear warm-up steps.
        lr_num_cycles: Cycles of ``cosine_with_restarts``.
        adam_beta1: AdamW beta1.
        adam_beta2: AdamW beta2.
        adam_weight_decay: AdamW weight decay.
        adam_epsilon: AdamW epsilon.
        use_8bit_adam: bitsandbytes' 8-bit AdamW (GPU; saves ~75% of the optimizer state memory).
        max_grad_norm: Gradient clipping norm (0 disables).
        gradient_checkpointing: Recompute activations in the backward pass (less memory, ~20-30% slower).
        snr_gamma: Min-SNR weighting gamma (5.0 is the paper's value); ``None`` for plain MSE.
        text_loss_weight: Extra loss weight on the text: each latent cell under (or next to) the glyph's ink counts
            ``1 + text_loss_weight`` times (0 = plain MSE). Letters cover a small part of a poster; this spends
            more of the gradient on their shapes.
        prediction_type: Override the scheduler's prediction type (only when the UNet is trained).
        use_ema: Keep an exponential moving average of the trainable weights; the EMA weights are saved.
        ema_decay: Largest EMA decay (with warm-up, the decay grows towards it).
        timestep_sampling: ``uniform`` over the training timesteps, or ``logit_normal`` (SD3's: t / T drawn as
            the sigmoid of a standard normal, so mid noise levels are trained most).
        ocr_loss_weight: Weight of the text-perceptual loss: each text line of the predicted clean image is cropped
            and read by ``recognizer``; its CTC loss against the line's text, weighted by the signal fraction
            ``alpha_bar(t)`` (low noise counts most), is added to the diffusion loss. 0 disables it.
        recognizer: A :class:`textgen.recognizer.WordRecognizer` folder (``textgen train-recognizer``).
    """

    train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    scale_lr: bool = False
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 500
    lr_num_cycles: int = 1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    use_8bit_adam: bool = False
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    snr_gamma: float | None = None
    text_loss_weight: float = 0.0
    prediction_type: str | None = None
    use_ema: bool = False
    ema_decay: float = 0.9999
    timestep_sampling: str = "uniform"
    ocr_loss_weight: float = 0.0
    recognizer: str | None = None

    def validate(self) -> None:
        if self.timestep_sampling not in TIMESTEP_SAMPLING:
            raise ValueError(f"--timestep_sampling must be one of {TIMESTEP_SAMPLING}, got {self.timestep_sampling!r}")
        if self.ocr_loss_weight < 0:
            raise ValueError(f"--ocr_loss_weight must be >= 0, got {self.ocr_loss_weight}")
        if self.ocr_loss_weight and not self.recognizer:
            raise ValueError("--ocr_loss_weight needs --recognizer FOLDER (train one with textgen train-recognizer)")
        if self.recognizer and not Path(self.recognizer).is_dir():
            raise FileNotFoundError(f"--recognizer {self.recognizer}: no such folder")
        if self.train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("--train_batch_size and --gradient_accumulation_steps must be >= 1")
        if self.learning_rate <= 0 or self.lr_warmup_steps < 0:
            raise ValueError("--learning_rate must be > 0 and --lr_warmup_steps >= 0")
        if self.lr_scheduler not in LR_SCHEDULES:
            raise ValueError(f"--lr_scheduler must be one of {LR_SCHEDULES}, got {self.lr_scheduler!r}")
        if self.prediction_type is not None and self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"--prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if self.snr_gamma is not None and self.snr_gamma <= 0:
            raise ValueError(f"--snr_gamma must be > 0, got {self.snr_gamma}")
        if self.text_loss_weight < 0:
            raise ValueError(f"--text_loss_weight must be >= 0, got {self.text_loss_weight}")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"--ema_decay must be in (0, 1), got {self.ema_decay}")


@dataclass
class RunArgs:
    """Devices, bookkeeping, checkpoints, validation and outputs.

    Args:
        output_dir: Where checkpoints, logs, validation images and the trained models go.
        seed: Seed of initialisation, data order, noise and validation.
        max_train_steps: Optimizer steps to train in total (a resumed run counts the steps already done).
        mixed_precision: ``no``, ``fp16`` (GPU) or ``bf16`` (GPU or a CPU with AVX512-bf16): frozen models are
            stored in it and the forward pass runs under autocast; trainable weights stay fp32.
        checkpointing_steps: Save a resumable checkpoint every N steps (and at the last step); 0 disables.
        checkpoints_total_limit: Keep at most this many checkpoints (oldest removed first).
        resume_from_checkpoint: ``latest`` or a ``checkpoint-STEP`` folder.
        validation_steps: Generate validation images every N steps (and at the end); 0 disables.
        num_validation_images: Images per validation layout.
        validation_inference_steps: Denoising steps of the validation pipeline (also saved as its default).
        validation_guidance_scale: Classifier-free guidance of the validation pipeline (also saved).
        validation_ocr: OCR engine scoring validation images (``rapidocr``, ``easyocr``, ``default``, ``none``).
        report_to: ``tensorboard`` or ``none``.
        num_threads: ``torch.set_num_threads`` for the training process (CPU training); ``None`` keeps torch's.
        allow_tf32: Allow TF32 matmuls on Ampere+ GPUs.
        save_dtype: dtype of the saved models.
        text_cache_size: Prompt embeddings kept when the text encoder is frozen (0 disables the cache).
        max_train_seconds: Stop (checkpoint, validate, save) once this much training time has passed, even before
            ``max_train_steps``: a wall-clock budget (``None``: no limit).
    """

    output_dir: str = "train-controlnet-out"
    seed: int = 0
    max_train_steps: int = 1000
    mixed_precision: str = "no"
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    validation_steps: int = 500
    num_validation_images: int = 2
    validation_inference_steps: int = 20
    validation_guidance_scale: float = 7.5
    validation_ocr: str = "rapidocr"
    report_to: str = "tensorboard"
    num_threads: int | None = None
    allow_tf32: bool = False
    save_dtype: str = "fp32"
    text_cache_size: int = 1024
    max_train_seconds: float | None = None

    def validate(self) -> None:
        if self.max_train_seconds is not None and not self.max_train_seconds > 0:
            raise ValueError(f"--max_train_seconds must be > 0, got {self.max_train_seconds}")
        if self.max_train_steps < 1:
            raise ValueError(f"--max_train_steps must be >= 1, got {self.max_train_steps}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"--mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}")
        if self.save_dtype not in SAVE_DTYPES:
            raise ValueError(f"--save_dtype must be one of {SAVE_DTYPES}, got {self.save_dtype!r}")
        if self.report_to not in ("tensorboard", "none"):
            raise ValueError(f"--report_to must be 'tensorboard' or 'none', got {self.report_to!r}")
        if self.checkpointing_steps < 0 or self.validation_steps < 0:
            raise ValueError("--checkpointing_steps and --validation_steps must be >= 0 (0 disables)")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(f"--checkpoints_total_limit must be >= 1, got {self.checkpoints_total_limit}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"--num_threads must be >= 1, got {self.num_threads}")
        if self.num_validation_images < 1 or self.validation_inference_steps < 1:
            raise ValueError("--num_validation_images and --validation_inference_steps must be >= 1")


@dataclass
class TrainArgs:
    """All options, grouped as the command line groups them."""

    model: ModelArgs
    data: DataArgs
    optim: OptimArgs
    run: RunArgs

    def validate(self) -> TrainArgs:
        """Checks every group (and the combinations); returns ``self``. Raises ValueError/FileNotFoundError."""
        self.model.validate()
        self.optim.validate()
        self.run.validate()
        self.data.validate()
        if self.optim.prediction_type and not self.model.train_unet:
            raise ValueError("--prediction_type changes what the UNet predicts: it needs --train_unet")
        if self.run.validation_steps and not (self.data.validation_shards or self.data.validation_layouts):
            logger.info("no --validation_shards or --validation_layouts: validation is off")
        return self

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> TrainArgs:
        groups = {}
        for name, klass in (("model", ModelArgs), ("data", DataArgs), ("optim", OptimArgs), ("run", RunArgs)):
            groups[name] = klass(**{f.name: getattr(ns, f.name) for f in fields(klass)})
        return cls(**groups)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ============================================================================================ command line
def _flag(group: argparse._ArgumentGroup, name: str, **kwargs: Any) -> None:
    """Adds ``--name`` (diffusers' spelling) with a ``--name-with-dashes`` alias (textgen's CLI spelling)."""
    names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    group.add_argument(*names, dest=name, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the training options to ``parser``, grouped like :class:`TrainArgs`."""
    m = parser.add_argument_group("model")
    _flag(m, "pretrained_model", help="diffusers SD folder or hub id, or a saved PosterPipeline folder")
    _flag(
        m,
        "init_config",
        help="build the stack from scratch: StackConfig JSON, e.g. '{\"resolution\": 128}', or a file",
    )
    _flag(m, "controlnet", help="ControlNet folder or hub id to start from (default: from the UNet)")
    _flag(m, "train_unet", action="store_true", help="train the UNet jointly (needed from scratch)")
    _flag(m, "train_text_encoder", action="store_true", help="train the text encoder too")
    _flag(m, "local_files_only", action="store_true", help="never touch the network when loading models")

    d = parser.add_argument_group("data")
    _flag(d, "train_shards", nargs="+", required=True, help="folders of .tar triple shards, or .tar files")
    _flag(d, "resolution", type=int, help="training side in pixels (default: the base's)")
    _flag(d, "caption_dropout", type=float, default=0.1, help="empty-prompt probability, for guidance (0.1)")
    _flag(d, "shuffle_buffer", type=int, default=1000, help="samples in each worker's shuffle buffer (1000)")
    _flag(d, "dataloader_num_workers", type=int, default=1, help="DataLoader workers rendering glyphs (1)")
    _flag(d, "validation_shards", nargs="+", help="held-out shards: their first layouts and captions validate")
    _flag(d, "validation_layouts", help='JSON list of {"prompt": ..., "layout": {...}} to validate on')
    _flag(d, "num_validation_samples", type=int, default=4, help="layouts taken from --validation_shards (4)")
    _flag(d, "glyph_source", choices=GLYPH_SOURCES, default="render", help="glyph from the layout or stored ink")
    _flag(d, "in_memory", action="store_true", help="decode the training set once into tensors on the device")
    _flag(d, "curriculum_shards", nargs="+", help="first-stage shards for --curriculum_steps (needs --in_memory)")
    _flag(d, "curriculum_steps", type=int, default=0, help="steps on --curriculum_shards first (0)")
    _flag(d, "memory_cache", help="folder keeping --in_memory sets decoded, for runs sharing their data")

    o = parser.add_argument_group("optimisation")
    _flag(o, "train_batch_size", type=int, default=4, help="samples per device per micro-batch (4)")
    _flag(o, "gradient_accumulation_steps", type=int, default=1, help="micro-batches per optimizer step (1)")
    _flag(o, "learning_rate", type=float, default=1e-5, help="peak learning rate (1e-5; ~1e-3 from scratch)")
    _flag(o, "scale_lr", action="store_true", help="multiply the lr by batch x accumulation x processes")
    _flag(o, "lr_scheduler", choices=LR_SCHEDULES, default="constant", help="learning-rate schedule (constant)")
    _flag(o, "lr_warmup_steps", type=int, default=500, help="linear warm-up steps (500)")
    _flag(o, "lr_num_cycles", type=int, default=1, help="cycles of cosine_with_restarts (1)")
    _flag(o, "adam_beta1", type=float, default=0.9)
    _flag(o, "adam_beta2", type=float, default=0.999)
    _flag(o, "adam_weight_decay", type=float, default=1e-2)
    _flag(o, "adam_epsilon", type=float, default=1e-8)
    _flag(o, "use_8bit_adam", action="store_true", help="bitsandbytes 8-bit AdamW (GPU)")
    _flag(o, "max_grad_norm", type=float, default=1.0, help="gradient clipping norm, 0 disables (1.0)")
    _flag(o, "gradient_checkpointing", action="store_true", help="trade compute for activation memory")
    _flag(o, "snr_gamma", type=float, help="Min-SNR loss weighting gamma (5.0 recommended); default plain MSE")
    _flag(
        o, "text_loss_weight", type=float, default=0.0,
        help="extra MSE weight on latent cells at the glyph's ink: they count 1 + this (0 = plain MSE)",
    )  # fmt: skip
    _flag(o, "prediction_type", choices=PREDICTION_TYPES, help="override the scheduler's (needs --train_unet)")
    _flag(o, "use_ema", action="store_true", help="EMA of the trainable weights; the EMA weights are saved")
    _flag(o, "ema_decay", type=float, default=0.9999, help="largest EMA decay, reached after warm-up (0.9999)")
    _flag(o, "timestep_sampling", choices=TIMESTEP_SAMPLING, default="uniform", help="training timesteps (uniform)")
    _flag(o, "ocr_loss_weight", type=float, default=0.0, help="text-perceptual (recognizer CTC) loss weight (0)")
    _flag(o, "recognizer", help="textgen train-recognizer folder for --ocr_loss_weight")

    r = parser.add_argument_group("run")
    _flag(r, "output_dir", required=True, help="checkpoints, logs, validation images and trained models")
    _flag(r, "seed", type=int, default=0, help="seed of init, data order, noise and validation (0)")
    _flag(r, "max_train_steps", type=int, default=1000, help="optimizer steps in total (1000)")
    _flag(r, "mixed_precision", choices=PRECISIONS, default="no", help="frozen-model dtype + autocast (no)")
    _flag(r, "checkpointing_steps", type=int, default=500, help="resumable checkpoint every N steps, 0 = off (500)")
    _flag(r, "checkpoints_total_limit", type=int, help="keep at most N checkpoints")
    _flag(r, "resume_from_checkpoint", help="'latest' or a checkpoint-STEP folder")
    _flag(r, "validation_steps", type=int, default=500, help="validation images every N steps, 0 = off (500)")
    _flag(r, "num_validation_images", type=int, default=2, help="images per validation layout (2)")
    _flag(r, "validation_inference_steps", type=int, default=20, help="denoising steps when validating (20)")
    _flag(r, "validation_guidance_scale", type=float, default=7.5, help="guidance scale when validating (7.5)")
    _flag(r, "validation_ocr", default="rapidocr", help="OCR engine scoring validation images, or 'none'")
    _flag(r, "report_to", choices=["tensorboard", "none"], default="tensorboard", help="tracker (tensorboard)")
    _flag(r, "num_threads", type=int, help="torch threads of the training process (CPU)")
    _flag(r, "allow_tf32", action="store_true", help="TF32 matmuls on Ampere+ GPUs")
    _flag(r, "save_dtype", choices=SAVE_DTYPES, default="fp32", help="dtype of the saved models (fp32)")
    _flag(r, "text_cache_size", type=int, default=1024, help="prompt embeddings cached when the encoder is frozen")
    _flag(r, "max_train_seconds", type=float, help="wall-clock training budget: stop and save when spent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_controlnet", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> TrainArgs:
    """Parses the command line into :class:`TrainArgs` (not yet validated)."""
    return TrainArgs.from_namespace(build_parser().parse_args(argv))


# ============================================================================================== validation
@dataclass(frozen=True)
class ValidationSample:
    prompt: str
    layout: Any  # textgen.layout.Layout


def load_validation_samples(data: DataArgs) -> list[ValidationSample]:
    """Validation prompts and layouts from ``--validation_layouts`` and/or ``--validation_shards``."""
    from textgen.layout import Layout, LayoutError

    samples: list[ValidationSample] = []
    if data.validation_layouts:
        path = Path(data.validation_layouts)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from err
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{path}: expected a non-empty JSON list of {{'prompt': ..., 'layout': {{...}}}}")
        for i, entry in enumerate(entries):
            where = f"{path}: entry {i}"
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
            layout = Layout.from_dict(entry.get("layout", entry), source=where)
            try:
                layout.validate(check_fonts=False)
            except LayoutError as err:
                raise LayoutError(f"{where}: {err}") from err
            prompt = entry.get("prompt") or layout.caption or " ".join(f'"{t}"' for t in layout.texts)
            samples.append(ValidationSample(prompt=prompt, layout=layout))
    if data.validation_shards:
        from data_prep.records import iter_triples

        for taken, triple in enumerate(iter_triples(data.validation_shards)):
            if taken >= data.num_validation_samples:
                break
            prompt = triple.caption or " ".join(f'"{t}"' for t in triple.layout.texts)
            samples.append(ValidationSample(prompt=prompt, layout=triple.layout))
    return samples


def load_ocr_engine(name: str) -> Any | None:
    """The OCR engine for validation scores, or ``None`` (with a logged note) when it cannot load."""
    if not name or name == "none":
        return None
    try:
        from data_prep.ocr import get_engine

        return get_engine(name, threads=1)
    except Exception as err:  # a missing optional OCR package must not stop a training run
        logger.warning(
            "validation OCR engine %r unavailable (%s): validation images are saved without OCR scores", name, err
        )
        return None


def ocr_scores(images: Sequence[Any], layouts: Sequence[Any], engine: Any) -> dict[str, Any]:
    """AnyText's Sentence Accuracy and NED over every line of every image (per-box crops).

    Args:
        images: Generated images.
        layouts: The layout each image was generated from (same order).
        engine: An OCR engine (:func:`data_prep.ocr.get_engine`).

    Returns:
        ``{"sentence_accuracy", "ned", "lines", "reads"}``.
    """
    from textgen.evaluate import read_boxes
    from textgen.metrics import line_scores

    lines, reads = [], []
    for image, layout in zip(images, layouts):
        read = read_boxes(image, layout, engine)
        reads.append(read)
        lines.extend(line_scores(read, layout.texts))
    n = len(lines)
    return {
        "sentence_accuracy": sum(s.exact for s in lines) / n if n else 0.0,
        "ned": sum(s.ned for s in lines) / n if n else 0.0,
        "lines": n,
        "reads": reads,
    }


def image_grid(rows: Sequence[Sequence[Any]], cell: int):
    """Pastes rows of PIL images into one grid, each cell ``cell`` pixels square."""
    from PIL import Image

    columns = max(len(r) for r in rows)
    grid = Image.new("RGB", (columns * cell, len(rows) * cell), "white")
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            grid.paste(image.convert("RGB").resize((cell, cell)), (x * cell, y * cell))
    return grid


# ================================================================================================== models
@dataclass
class Models:
    """The components of one training run."""

    unet: Any
    controlnet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any  # DDPMScheduler for training
    scheduler: Any  # the inference scheduler saved with the pipeline
    from_scratch: bool
    source: str


def _component_class(library: str, class_name: str):
    if library not in _COMPONENT_LIBRARIES:
        raise ValueError(f"model_index.json names {library}.{class_name}: only {_COMPONENT_LIBRARIES} are loaded")
    return getattr(importlib.import_module(library), class_name)


def _load_pretrained(model: ModelArgs) -> dict[str, Any]:
    """Loads tokenizer, text encoder, VAE, UNet, scheduler (and a PosterPipeline's glyph ControlNet) in fp32."""
    from diffusers import DiffusionPipeline

    import textgen.models  # noqa: F401  (registers PixelUnshuffleAutoencoder for saved tiny stacks)
    from textgen.pipeline import CONFIG_NAME

    path = model.pretrained_model
    index = DiffusionPipeline.load_config(path, local_files_only=model.local_files_only)
    kw = {"local_files_only": model.local_files_only}
    out: dict[str, Any] = {}
    for name in ("tokenizer", "text_encoder", "vae", "unet", "scheduler"):
        entry = index.get(name)
        if not entry or entry[0] is None:
            raise ValueError(f"{path}: model_index.json has no {name!r} component (not a Stable Diffusion folder?)")
        klass = _component_class(*entry)
        out[name] = klass.from_pretrained(path, subfolder=name, **kw)
    saved = Path(path) / CONFIG_NAME
    has_controlnet = index.get("controlnet", [None])[0] is not None
    # a PosterPipeline folder's glyph ControlNet is where training continues (a canny one is no glyph start)
    glyph_pipeline = saved.is_file() and json.loads(saved.read_text()).get("control") == "glyph"
    if model.controlnet is None and has_controlnet and glyph_pipeline:
        from diffusers import ControlNetModel

        logger.info("continuing from the glyph ControlNet of the PosterPipeline folder %s", path)
        out["controlnet"] = ControlNetModel.from_pretrained(path, subfolder="controlnet", **kw)
    elif model.controlnet is None and glyph_pipeline and not has_controlnet:
        out["controlnet"] = None  # a glyph-input UNet without ControlNet: it stays without one
    return out


def _embedding_channels(factor: int) -> tuple[int, ...]:
    from textgen.models import StackConfig

    return StackConfig(factor=factor).embedding_channels()


def load_models(model: ModelArgs, seed: int) -> Models:
    """Builds or loads every component in fp32 (dtypes and devices are set by the trainer).

    Raises:
        ValueError: a given ControlNet whose condition embedding does not land on the latent grid.

    Returns:
        The :class:`Models`; ``controlnet`` is ``None`` for a glyph-input UNet built or saved without one.
    """
    from diffusers import ControlNetModel, DDPMScheduler

    if model.init_config is not None:
        from textgen.models import build_stack

        parts = build_stack(model.stack_config(), seed=seed)
        source = f"init_config {model.init_config}"
    else:
        parts = _load_pretrained(model)
        source = str(model.pretrained_model)
    vae_factor = 2 ** (len(parts["vae"].config.block_out_channels) - 1)
    if model.controlnet is not None:
        controlnet = ControlNetModel.from_pretrained(model.controlnet, local_files_only=model.local_files_only)
        levels = len(controlnet.config.conditioning_embedding_out_channels)
        if 2 ** (levels - 1) != vae_factor:
            raise ValueError(
                f"--controlnet {model.controlnet}: its condition embedding downsamples by {2 ** (levels - 1)} but the "
                f"base's VAE factor is {vae_factor}; use a ControlNet made for this base"
            )
    elif "controlnet" in parts:
        controlnet = parts["controlnet"]
    else:
        controlnet = ControlNetModel.from_unet(
            parts["unet"], conditioning_embedding_out_channels=_embedding_channels(vae_factor)
        )
    return Models(
        unet=parts["unet"],
        controlnet=controlnet,
        vae=parts["vae"],
        text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"],
        noise_scheduler=DDPMScheduler.from_config(parts["scheduler"].config),
        scheduler=parts["scheduler"],
        from_scratch=model.init_config is not None,
        source=source,
    )


# ==================================================================================================== loss
def loss_target(noise_scheduler: Any, latents, noise, timesteps, prediction_type: str):
    """What the UNet must predict: the noise (epsilon), the velocity (v_prediction) or the clean latents (sample)."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    if prediction_type == "sample":
        return latents
    raise ValueError(f"unknown prediction type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def snr_loss_weights(noise_scheduler: Any, timesteps, gamma: float, prediction_type: str):
    """Min-SNR-gamma weights (Hang et al. 2023) for each sample's MSE, by prediction type.

    In terms of the clean-sample error the Min-SNR loss is ``min(SNR, gamma) * |x0 - x0_hat|^2``. The epsilon
    error equals ``SNR`` times the clean-sample error and the velocity error ``SNR + 1`` times, so the weights on
    the MSE actually computed are ``min(SNR, gamma) / SNR`` (epsilon), ``min(SNR, gamma) / (SNR + 1)``
    (v_prediction) and ``min(SNR, gamma)`` (sample).
    """
    import torch
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise_scheduler, timesteps).clamp(min=1e-8)
    clipped = torch.minimum(snr, torch.full_like(snr, gamma))
    if prediction_type == "epsilon":
        return clipped / snr
    if prediction_type == "v_prediction":
        return clipped / (snr + 1)
    if prediction_type == "sample":
        return clipped
    raise ValueError(f"unknown prediction type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def text_region_weights(ink, grid: tuple[int, int], weight: float):
    """Per-cell loss weights ``1 + weight`` on the text, ``1`` elsewhere, on the latent grid.

    Args:
        ink: The glyph's ink, ``(batch, 1, H, W)`` in [0, 1] (1 = ink).
        grid: The latent grid ``(h, w)``; a cell is text when any ink pixel falls in it or in a neighbouring cell
            (the one-cell margin covers the strokes' edges and anti-aliasing).
        weight: The extra weight on text cells.

    Returns:
        ``(batch, 1, h, w)`` weights, broadcast over the latent channels.
    """
    import torch.nn.functional as F

    cells = F.adaptive_max_pool2d(ink.float(), grid)
    near = F.max_pool2d(cells, kernel_size=3, stride=1, padding=1)
    return 1.0 + weight * (near > 0.05).float()


def sample_timesteps(kind: str, n: int, num_train_timesteps: int, generator: Any, device: Any):
    """Training timesteps: ``uniform``, or ``logit_normal`` (t / T = sigmoid(N(0, 1)): mid noise trained most)."""
    import torch

    if kind == "uniform":
        return torch.randint(0, num_train_timesteps, (n,), generator=generator, device=device)
    if kind == "logit_normal":
        u = torch.sigmoid(torch.randn(n, generator=generator, device=device))
        return (u * num_train_timesteps).long().clamp(0, num_train_timesteps - 1)
    raise ValueError(f"unknown timestep sampling {kind!r}; expected one of {TIMESTEP_SAMPLING}")


def predicted_clean(noise_scheduler: Any, pred, noisy, timesteps, prediction_type: str):
    """The clean latents the model's output implies, for any prediction type (differentiable)."""
    if prediction_type == "sample":
        return pred
    alpha_bar = noise_scheduler.alphas_cumprod.to(pred.device)[timesteps].float().view(-1, 1, 1, 1)
    if prediction_type == "epsilon":
        return (noisy - (1 - alpha_bar).sqrt() * pred) / alpha_bar.sqrt()
    if prediction_type == "v_prediction":
        return alpha_bar.sqrt() * noisy - (1 - alpha_bar).sqrt() * pred
    raise ValueError(f"unknown prediction type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def ocr_loss(recognizer: Any, images, batch: dict[str, Any], alphas_cumprod, timesteps):
    """The text-perceptual loss of a batch: CTC of every readable text line of the predicted images.

    Each line's per-character CTC loss is weighted by its sample's ``alpha_bar(t)`` and the weighted sum divided
    by the batch size (a batch without readable lines contributes nothing: returns ``None``).
    """
    import torch

    from textgen.recognizer import box_rows, crop_lines, ctc_loss, low_noise_weights

    device = images.device
    lengths = batch["label_lengths"].to(device)
    rows, keep = box_rows(batch["boxes"].to(device), lengths)
    if not len(rows):
        return None
    targets = batch["labels"].to(device)[keep[:, 0], keep[:, 1]]
    target_lengths = lengths[keep[:, 0], keep[:, 1]]
    with torch.autocast(device_type=device.type, enabled=False):
        per_line = ctc_loss(recognizer, crop_lines(images.float(), rows), targets, target_lengths)
    weights = low_noise_weights(alphas_cumprod, timesteps)[keep[:, 0]]
    return (per_line * weights).sum() / images.shape[0]


class TextEmbeddingCache:
    """Prompt embeddings of a frozen text encoder, kept for repeated captions (LRU, ``max_items`` entries).

    The empty prompt of caption dropout and repeated synthetic captions are encoded once.
    """

    def __init__(self, encoder: Any, max_items: int):
        self.encoder = encoder
        self.max_items = int(max_items)
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.hits = self.misses = 0

    def __call__(self, captions: Sequence[str], input_ids):
        import torch

        if self.max_items <= 0:
            with torch.no_grad():
                return self.encoder(input_ids, return_dict=False)[0]
        missing = [i for i, c in enumerate(captions) if c not in self.items]
        unique = list(dict.fromkeys(captions[i] for i in missing))
        self.hits += len(captions) - len(unique)  # embeddings not computed
        self.misses += len(unique)
        if unique:
            rows = [next(i for i in missing if captions[i] == c) for c in unique]
            with torch.no_grad():
                encoded = self.encoder(input_ids[rows], return_dict=False)[0]
            for caption, embedding in zip(unique, encoded):
                self.items[caption] = embedding
        out = []
        for caption in captions:
            self.items.move_to_end(caption)
            out.append(self.items[caption])
        result = torch.stack(out)
        while len(self.items) > self.max_items:
            self.items.popitem(last=False)
        return result


# ================================================================================================= helpers
def _checkpoint_step(path: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def list_checkpoints(output_dir: Path) -> list[Path]:
    """``checkpoint-STEP`` folders of a run, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and _checkpoint_step(p) >= 0]
    return sorted(found, key=_checkpoint_step)


def _last_checkpoint_name(output_dir: Path) -> str:
    found = list_checkpoints(output_dir)
    return found[-1].name if found else "none saved yet"


def check_checkpoint(path: Path) -> dict[str, Any]:
    """Checks a checkpoint folder's files before anything loads them; returns its training state.

    Raises:
        ValueError: naming the first missing, empty, truncated or unreadable file.
    """
    import zipfile

    from safetensors import safe_open

    state_file = path / STATE_NAME
    if not state_file.is_file():
        raise ValueError(f"{path}: incomplete checkpoint (no {STATE_NAME}: the save was interrupted)")
    try:
        state = json.loads(state_file.read_text())
        int(state["global_step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{state_file}: unreadable training state ({err})") from err
    for file in sorted(path.iterdir()):
        if not file.is_file():
            continue
        if file.stat().st_size == 0:
            raise ValueError(f"{file}: empty file in the checkpoint (a save cut short?)")
        if file.suffix == ".safetensors":
            try:
                with safe_open(str(file), framework="pt") as f:
                    for key in f.keys():  # noqa: SIM118 (safe_open is no dict)
                        f.get_slice(key)
            except Exception as err:  # SafetensorError and OSError alike
                raise ValueError(f"{file}: truncated or corrupt safetensors file ({err})") from err
        elif file.suffix == ".bin" and not zipfile.is_zipfile(file):
            raise ValueError(f"{file}: truncated or corrupt torch file (not a complete archive)")
    return state


def _complete(path: Path) -> bool:
    try:
        check_checkpoint(path)
    except ValueError:
        return False
    return True


def _remove_partial_saves(output_dir: Path) -> None:
    """Deletes the ``.checkpoint-STEP.partial`` folders of saves that were cut short (never resumed from)."""
    if not output_dir.is_dir():
        return
    for partial in output_dir.glob(".checkpoint-*.partial"):
        logger.warning("removing %s: a checkpoint save that did not finish", partial)
        shutil.rmtree(partial, ignore_errors=True)


def _resolve_resume(run: RunArgs) -> Path | None:
    if not run.resume_from_checkpoint:
        return None
    if run.resume_from_checkpoint == "latest":
        found = list_checkpoints(Path(run.output_dir))
        complete = [p for p in found if _complete(p)]
        newest = _checkpoint_step(complete[-1]) if complete else -1
        skipped = [p.name for p in found if p not in complete and _checkpoint_step(p) > newest]
        if skipped:
            logger.warning("--resume_from_checkpoint latest: skipping incomplete or damaged %s", ", ".join(skipped))
        if not complete:
            if found:
                raise ValueError(
                    f"{run.output_dir}: no complete checkpoint to resume from ({', '.join(p.name for p in found)} "
                    "are incomplete or damaged); remove them to start over"
                )
            logger.info("--resume_from_checkpoint latest: no checkpoint in %s yet, starting a new run", run.output_dir)
            return None
        return complete[-1]
    path = Path(run.resume_from_checkpoint)
    if not path.is_dir() and (Path(run.output_dir) / path).is_dir():
        path = Path(run.output_dir) / path
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {run.resume_from_checkpoint}: no such checkpoint folder")
    if not (path / STATE_NAME).is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {run.resume_from_checkpoint}: no {STATE_NAME} there")
    return path


def _truncate_log(path: Path, last_step: int) -> None:
    """Drops log lines written after the checkpoint a run resumes from (a crashed run's tail)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


def _dtype(name: str):
    import torch

    return {"fp32": torch.float32, "no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def _cpu_has_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX); without them bf16 is slow."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cast(module: Any, dtype: Any) -> Any:
    """``module.to(dtype)`` only when it changes something (diffusers warns on every cast)."""
    return module if module.dtype == dtype else module.to(dtype)


def _tracker_config(args: TrainArgs) -> dict[str, Any]:
    """Scalars only: TensorBoard's hparams refuse lists and None."""
    flat = {}
    for group, values in args.to_dict().items():
        for key, value in values.items():
            if isinstance(value, (int, float, str, bool)):
                flat[f"{group}.{key}"] = value
            elif value is not None:
                flat[f"{group}.{key}"] = json.dumps(value)
    return flat


# ================================================================================================= trainer
class ControlNetTrainer:
    """Holds the state of one run: accelerator, models, optimizer, data, EMA, step counter.

    ``ControlNetTrainer(args).train()`` runs the whole thing; :func:`main` is the command-line face.
    """

    def __init__(self, args: TrainArgs):
        self.args = args.validate()
        self.output_dir = Path(args.run.output_dir)
        self.global_step = 0
        self.elapsed = 0.0  # training wall seconds, carried across resumes
        self.log_path = self.output_dir / LOG_NAME
        self.data_seed = args.run.seed  # changes only when a resume cannot continue the stream exactly

    # ------------------------------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        args = self.args
        run, optim = args.run, args.optim
        if run.num_threads:
            torch.set_num_threads(run.num_threads)
        if run.mixed_precision == "fp16" and not torch.cuda.is_available():
            raise ValueError("--mixed_precision fp16 needs a CUDA GPU; on a CPU use bf16 (or no)")
        if run.mixed_precision == "bf16" and not torch.cuda.is_available() and not _cpu_has_bf16():
            logger.warning(
                "--mixed_precision bf16 on a CPU without native bf16 (AVX512-BF16/AMX): convolutions fall back to slow"
                " kernels and a step can be ~10x slower than fp32; prefer --mixed_precision no on this machine"
            )
        if run.report_to == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError as err:
                raise ImportError("--report_to tensorboard needs tensorboard: pip install 'textgen[train]'") from err
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizers warn when DataLoader workers fork
        self.shard_list = self._shards()
        check_shards(self.shard_list)

        self.output_dir.mkdir(parents=True, exist_ok=True)
        # Several CPU processes (torchrun, or accelerate launch --cpu) train with gloo DDP only if asked for the CPU.
        cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.accelerator = Accelerator(
            cpu=cpu_processes,
            gradient_accumulation_steps=optim.gradient_accumulation_steps,
            mixed_precision=run.mixed_precision,
            log_with=None if run.report_to == "none" else run.report_to,
            project_config=ProjectConfiguration(
                project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")
            ),
        )
        acc = self.accelerator
        if not acc.is_main_process:
            import diffusers
            import transformers

            diffusers.utils.logging.set_verbosity_error()
            transformers.utils.logging.set_verbosity_error()
        if run.allow_tf32 and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
        set_seed(run.seed)

        # Models: frozen parts in the mixed-precision dtype, trainable parts in fp32.
        m = load_models(args.model, run.seed)
        self.models = m
        self.weight_dtype = _dtype(run.mixed_precision)
        self.train_unet = args.model.train_unet
        self.train_text = args.model.train_text_encoder
        if m.from_scratch and not self.train_text:
            logger.warning("training from scratch with a frozen random text encoder: add --train_text_encoder")
        self.prediction_type = optim.prediction_type or m.noise_scheduler.config.prediction_type
        if optim.prediction_type:
            m.noise_scheduler.register_to_config(prediction_type=optim.prediction_type)
            m.scheduler.register_to_config(prediction_type=optim.prediction_type)
        self.vae_factor = 2 ** (len(m.vae.config.block_out_channels) - 1)
        self.resolution = args.data.resolution or int(m.unet.config.sample_size) * self.vae_factor
        down = self.vae_factor * 2 ** (len(m.unet.config.block_out_channels) - 1)
        if self.resolution % down:
            raise ValueError(
                f"--resolution {self.resolution} must be a multiple of {down} (VAE factor x UNet downsampling)"
            )

        from diffusers.models.attention_processor import AttnProcessor2_0

        for net in (m.unet, m.controlnet):
            if net is not None:
                net.set_attn_processor(AttnProcessor2_0())  # PyTorch SDPA kernels
        check_captions(self.shard_list, m.tokenizer)
        m.vae.requires_grad_(False)
        m.unet.requires_grad_(self.train_unet)
        m.text_encoder.requires_grad_(self.train_text)
        if m.controlnet is not None:
            m.controlnet.requires_grad_(True)
        _cast(m.vae.to(acc.device), self.weight_dtype).eval()
        _cast(m.unet.to(acc.device), torch.float32 if self.train_unet else self.weight_dtype)
        _cast(m.text_encoder.to(acc.device), torch.float32 if self.train_text else self.weight_dtype)
        if m.controlnet is not None:
            _cast(m.controlnet.to(acc.device), torch.float32).train()  # even when --controlnet was saved in fp16
        m.unet.train(self.train_unet)
        m.text_encoder.train(self.train_text)
        if optim.gradient_checkpointing:
            if m.controlnet is not None:
                m.controlnet.enable_gradient_checkpointing()
            m.unet.enable_gradient_checkpointing()
            if self.train_text:
                m.text_encoder.gradient_checkpointing_enable()

        self.trainable: dict[str, Any] = {} if m.controlnet is None else {"controlnet": m.controlnet}
        if m.controlnet is None and not self.train_unet:
            raise ValueError(f"{m.source} has no ControlNet: add --train_unet (there is nothing else to train)")
        if self.train_unet:
            self.trainable["unet"] = m.unet
        if self.train_text:
            self.trainable["text_encoder"] = m.text_encoder
        self.text_cache = None if self.train_text else TextEmbeddingCache(m.text_encoder, run.text_cache_size)

        # Optimizer and learning-rate schedule.
        lr = optim.learning_rate
        if optim.scale_lr:
            lr *= optim.gradient_accumulation_steps * optim.train_batch_size * acc.num_processes
        params = [p for net in self.trainable.values() for p in net.parameters() if p.requires_grad]
        self.optimizer = self._optimizer(params, lr)
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(
            optim.lr_scheduler,
            optimizer=self.optimizer,
            num_warmup_steps=optim.lr_warmup_steps * acc.num_processes,
            num_training_steps=run.max_train_steps * acc.num_processes,
            num_cycles=optim.lr_num_cycles,
        )
        names = list(self.trainable)
        prepared = acc.prepare(*self.trainable.values(), self.optimizer, self.lr_scheduler)
        for name, net in zip(names, prepared[: len(names)]):
            self.trainable[name] = net
        self.optimizer, self.lr_scheduler = prepared[len(names)], prepared[len(names) + 1]

        self.ema: dict[str, Any] = {}  # on the main process only: the others never validate or save
        if optim.use_ema and acc.is_main_process:
            from diffusers.training_utils import EMAModel

            for name, net in self.trainable.items():
                base = acc.unwrap_model(net)
                self.ema[name] = EMAModel(
                    base.parameters(),
                    decay=optim.ema_decay,
                    use_ema_warmup=True,
                    power=3 / 4,  # reaches 0.999 at ~10k steps: suits short runs
                    foreach=True,
                    model_cls=type(base),
                    model_config=base.config,
                )
                self.ema[name].to(acc.device)
        self.noise_rng = torch.Generator(device=acc.device).manual_seed(run.seed * 1000 + acc.process_index)

        # Resume: weights, optimizer, LR schedule and RNG (accelerate), EMA, step and data position (ours).
        if acc.is_main_process:
            _remove_partial_saves(self.output_dir)
        resume = _resolve_resume(run)
        if resume is not None:
            self.load_checkpoint(resume)
        elif acc.is_main_process and self.log_path.exists():
            self.log_path.unlink()  # a fresh run in an old folder starts a fresh log
        if acc.is_main_process:
            (self.output_dir / "training_args.json").write_text(json.dumps(args.to_dict(), indent=2) + "\n")
            if acc.log_with:
                acc.init_trackers("train_controlnet", config=_tracker_config(args))
        self.recognizer = self._load_recognizer() if optim.ocr_loss_weight else None
        self.memory: dict[str, MemoryTriples] = {}
        if args.data.in_memory:
            self.memory = self._memory_sets()
            self.dataloader = None
        else:
            self.dataloader = self._dataloader(start_batches=self.global_step * optim.gradient_accumulation_steps)
        self.validation = load_validation_samples(args.data) if run.validation_steps else []
        self.ocr_engine = load_ocr_engine(run.validation_ocr) if self.validation and acc.is_main_process else None

    def _shards(self) -> list[Path]:
        from data_prep.records import shard_paths

        return shard_paths(self.args.data.train_shards)

    def _load_recognizer(self):
        from textgen.recognizer import WordRecognizer

        recognizer = WordRecognizer.from_pretrained(self.args.optim.recognizer).to(self.accelerator.device)
        recognizer.requires_grad_(False)
        return recognizer.eval()

    def _memory_sets(self) -> dict[str, MemoryTriples]:
        """The in-memory training set(s): ``train``, and ``curriculum`` when a first stage is given."""
        from data_prep.records import shard_paths

        data, acc = self.args.data, self.accelerator
        if acc.num_processes > 1:
            raise ValueError("--in_memory trains on one process; stream the shards for several")
        sets = {}
        sources = {"train": self.shard_list}
        if data.curriculum_shards:
            sources["curriculum"] = shard_paths(data.curriculum_shards)
        for name, paths in sources.items():
            t0 = time.perf_counter()
            sets[name] = MemoryTriples.build(
                paths,
                resolution=self.resolution,
                tokenizer=self.models.tokenizer,
                glyph_source=data.glyph_source,
                workers=max(1, data.dataloader_num_workers),
                device=acc.device,
                cache=data.memory_cache,
            )
            logger.info("%s set: %d samples decoded into memory in %.1f s (%d skipped)", name, len(sets[name]),
                        time.perf_counter() - t0, sets[name].skipped)  # fmt: skip
        return sets

    def next_batch(self, micro_batch: int, data_iter) -> dict[str, Any]:
        """The micro-batch ``micro_batch`` of the run: from memory (by index) or from the stream."""
        if not self.memory:
            return next(data_iter)
        data, optim = self.args.data, self.args.optim
        step = micro_batch // optim.gradient_accumulation_steps
        name = "curriculum" if "curriculum" in self.memory and step < data.curriculum_steps else "train"
        return self.memory[name].batch(micro_batch, optim.train_batch_size, self.data_seed, data.caption_dropout)

    def _optimizer(self, params: list[Any], lr: float):
        import torch

        optim = self.args.optim
        kwargs = dict(
            lr=lr,
            betas=(optim.adam_beta1, optim.adam_beta2),
            weight_decay=optim.adam_weight_decay,
            eps=optim.adam_epsilon,
        )
        if optim.use_8bit_adam:
            try:
                import bitsandbytes as bnb
            except ImportError as err:
                raise ImportError("--use_8bit_adam needs bitsandbytes (and a GPU): pip install bitsandbytes") from err
            return bnb.optim.AdamW8bit(params, **kwargs)
        return torch.optim.AdamW(params, foreach=True, **kwargs)

    def _dataloader(self, start_batches: int):
        import torch

        data, optim, acc = self.args.data, self.args.optim, self.accelerator
        stream = GlyphTripleStream(
            self.shard_list,
            resolution=self.resolution,
            tokenizer=self.models.tokenizer,
            caption_dropout=data.caption_dropout,
            shuffle_buffer=data.shuffle_buffer,
            seed=self.data_seed,
            rank=acc.process_index,
            world_size=acc.num_processes,
            batch_size=optim.train_batch_size,
            start_batches=start_batches,
            glyph_source=data.glyph_source,
        )
        workers = data.dataloader_num_workers
        return torch.utils.data.DataLoader(
            _torch_iterable(stream),
            batch_size=optim.train_batch_size,
            num_workers=workers,
            worker_init_fn=_worker_init if workers else None,
            persistent_workers=workers > 0,
            pin_memory=acc.device.type == "cuda",
        )

    # ------------------------------------------------------------------------------------------- step
    def encode_prompts(self, batch: dict[str, Any]):
        ids = batch["input_ids"].to(self.accelerator.device)
        if self.text_cache is not None:
            return self.text_cache(list(batch["caption"]), ids)
        return self.trainable["text_encoder"](ids, return_dict=False)[0]

    def compute_loss(self, batch: dict[str, Any]):
        """The DDPM loss of one micro-batch (the forward pass; autocast is set by the caller)."""
        import torch
        import torch.nn.functional as F

        from textgen.models import glyph_input_channels, glyph_to_latent_grid

        m, acc = self.models, self.accelerator
        device = acc.device
        pixels = batch["pixel_values"].to(device, non_blocking=True).to(self.weight_dtype) / 127.5 - 1.0
        cond = batch["conditioning"].to(device, non_blocking=True).float().div(255.0)
        ink = 1.0 - cond.unsqueeze(1)  # (B, 1, H, W), 1 on the text
        cond = cond.unsqueeze(1).expand(-1, 3, -1, -1)  # the glyph, black on white, in [0, 1]
        with torch.no_grad():
            latents = m.vae.encode(pixels).latent_dist.sample(generator=self.noise_rng) * m.vae.config.scaling_factor
        latents = latents.float()
        noise = torch.randn(latents.shape, generator=self.noise_rng, device=device)
        timesteps = sample_timesteps(
            self.args.optim.timestep_sampling,
            latents.shape[0],
            m.noise_scheduler.config.num_train_timesteps,
            self.noise_rng,
            device,
        )
        noisy = m.noise_scheduler.add_noise(latents, noise, timesteps)
        text = self.encode_prompts(batch)

        controlnet = self.trainable.get("controlnet")
        unet = self.trainable.get("unet", m.unet)
        unet_dtype = torch.float32 if self.train_unet else self.weight_dtype
        residuals = {}
        if controlnet is not None:
            down, mid = controlnet(
                noisy, timesteps, encoder_hidden_states=text.float(), controlnet_cond=cond, return_dict=False
            )
            residuals = {
                "down_block_additional_residuals": [r.to(unet_dtype) for r in down],
                "mid_block_additional_residual": mid.to(unet_dtype),
            }
        unet_input = noisy
        extra = glyph_input_channels(acc.unwrap_model(unet), latents.shape[1])
        if extra:  # a glyph-input UNet (StackConfig.glyph_concat): the ink mask rides along with the latent
            unet_input = torch.cat([noisy, glyph_to_latent_grid(ink, extra)], dim=1)
        pred = unet(
            unet_input.to(unet_dtype),
            timesteps,
            encoder_hidden_states=text.to(unet_dtype),
            return_dict=False,
            **residuals,
        )[0]
        target = loss_target(m.noise_scheduler, latents, noise, timesteps, self.prediction_type)
        gamma, text_weight = self.args.optim.snr_gamma, self.args.optim.text_loss_weight
        if gamma is None and not text_weight:
            loss = F.mse_loss(pred.float(), target.float())
        else:
            error = F.mse_loss(pred.float(), target.float(), reduction="none")
            if text_weight:
                error = error * text_region_weights(ink, tuple(latents.shape[-2:]), text_weight)
            per_sample = error.mean(dim=(1, 2, 3))
            if gamma is not None:
                per_sample = per_sample * snr_loss_weights(m.noise_scheduler, timesteps, gamma, self.prediction_type)
            loss = per_sample.mean()
        if self.recognizer is not None:
            clean = predicted_clean(m.noise_scheduler, pred.float(), noisy.float(), timesteps, self.prediction_type)
            images = m.vae.decode(clean / m.vae.config.scaling_factor).sample
            ocr = ocr_loss(self.recognizer, images, batch, m.noise_scheduler.alphas_cumprod, timesteps)
            if ocr is not None:
                self.last_ocr_loss = ocr.detach()
                loss = loss + self.args.optim.ocr_loss_weight * ocr
        return loss

    # ------------------------------------------------------------------------------------------ train
    def train(self) -> dict[str, Any]:
        """Runs the training loop to ``max_train_steps``; saves the final models. Returns a summary."""
        from tqdm.auto import tqdm

        self.setup()
        acc, run, optim = self.accelerator, self.args.run, self.args.optim
        if acc.is_main_process:
            n_train = sum(p.numel() for net in self.trainable.values() for p in net.parameters())
            logger.info(
                "training %s (%.1f M trainable parameters) from %s at %dpx, batch %d x %d accumulation x %d "
                "processes, prediction %s, steps %d -> %d",
                "+".join(self.trainable), n_train / 1e6, self.models.source, self.resolution, optim.train_batch_size,
                optim.gradient_accumulation_steps, acc.num_processes, self.prediction_type, self.global_step,
                run.max_train_steps,
            )  # fmt: skip
        progress = tqdm(
            total=run.max_train_steps, initial=self.global_step, desc="steps", disable=not acc.is_main_process
        )
        params = [p for net in self.trainable.values() for p in net.parameters() if p.requires_grad]
        data = iter(self.dataloader) if self.dataloader is not None else None
        micro_batch = self.global_step * optim.gradient_accumulation_steps
        self.last_ocr_loss = None
        last_validated = -1
        run_start, step_start = time.perf_counter() - self.elapsed, time.perf_counter()
        losses, data_seconds = [], 0.0
        while self.global_step < run.max_train_steps:
            t0 = time.perf_counter()
            batch = self.next_batch(micro_batch, data)
            micro_batch += 1
            data_seconds += time.perf_counter() - t0
            with acc.accumulate(*self.trainable.values()):
                with acc.autocast():
                    loss = self.compute_loss(batch)
                acc.backward(loss)
                if acc.sync_gradients and optim.max_grad_norm > 0:
                    acc.clip_grad_norm_(params, optim.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            if not acc.sync_gradients:
                continue

            # One optimizer step done.
            for name, ema in self.ema.items():
                ema.step(acc.unwrap_model(self.trainable[name]).parameters())
            self.global_step += 1
            progress.update(1)
            step_loss = acc.gather(sum(losses).reshape(1) / len(losses)).mean().item()
            if not math.isfinite(step_loss):
                raise FloatingPointError(
                    f"the loss became {step_loss} at step {self.global_step}: training diverged (try a lower "
                    f"--learning_rate, or resume from the last checkpoint, {_last_checkpoint_name(self.output_dir)})"
                )
            now = time.perf_counter()
            self.elapsed = now - run_start
            record = {
                "step": self.global_step,
                "loss": round(step_loss, 6),
                "lr": self.lr_scheduler.get_last_lr()[0],
                "seconds": round(self.elapsed, 3),
                "step_seconds": round(now - step_start, 4),
                "data_seconds": round(data_seconds, 4),
                "samples": self.global_step * optim.train_batch_size * optim.gradient_accumulation_steps
                * acc.num_processes,
            }  # fmt: skip
            if self.last_ocr_loss is not None:
                record["ocr_loss"] = round(float(self.last_ocr_loss), 5)
            if acc.device.type == "cuda":
                import torch

                record["gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            losses, data_seconds, step_start = [], 0.0, now
            progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{record['lr']:.2e}")
            if acc.is_main_process:
                with self.log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            acc.log({"train/loss": step_loss, "train/lr": record["lr"]}, step=self.global_step)

            out_of_time = run.max_train_seconds is not None and self.elapsed >= run.max_train_seconds
            if out_of_time:
                logger.info("--max_train_seconds %.0f spent at step %d: stopping", run.max_train_seconds,
                            self.global_step)  # fmt: skip
            last = self.global_step == run.max_train_steps or out_of_time
            if run.checkpointing_steps and (self.global_step % run.checkpointing_steps == 0 or last):
                self.save_checkpoint()
            if self.validation and run.validation_steps and self.global_step % run.validation_steps == 0:
                self.validate()
                last_validated = self.global_step
            step_start = time.perf_counter()  # checkpoint and validation time is not step time
            if out_of_time:
                break
        progress.close()

        if self.validation and run.validation_steps and last_validated != self.global_step:
            self.validate()
        outputs = self.save_final()
        acc.end_training()
        cache = self.text_cache
        return {
            "global_step": self.global_step,
            "seconds": round(self.elapsed, 3),
            "outputs": outputs,
            "text_cache_hits": cache.hits if cache else None,
        }

    # ------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """``output_dir/checkpoint-STEP``: accelerate state + EMA (safetensors) + step, time and data position."""
        from safetensors.torch import save_file

        acc, run = self.accelerator, self.args.run
        final = self.output_dir / f"checkpoint-{self.global_step}"
        # Written under a temporary name and renamed when complete: a run killed mid-save (or a full disk) leaves
        # a .partial folder that resuming ignores, and the older checkpoints are pruned only after the rename.
        path = self.output_dir / f".checkpoint-{self.global_step}.partial"
        if acc.is_main_process and path.exists():
            shutil.rmtree(path)
        acc.wait_for_everyone()
        acc.save_state(str(path))
        path.mkdir(parents=True, exist_ok=True)
        rng = {"noise_rng": self.noise_rng.get_state().cpu()}
        save_file(rng, str(path / RNG_NAME.format(rank=acc.process_index)))
        if acc.is_main_process:
            tensors = {}
            state = {
                "global_step": self.global_step,
                "elapsed_seconds": self.elapsed,
                "micro_batches": self.global_step * self.args.optim.gradient_accumulation_steps,
                "train_batch_size": self.args.optim.train_batch_size,
                "dataloader_num_workers": self.args.data.dataloader_num_workers,
                "num_processes": acc.num_processes,
                "seed": run.seed,
                "trainable": list(self.trainable),
                "ema": {},
            }
            for name, ema in self.ema.items():
                names = [n for n, _ in acc.unwrap_model(self.trainable[name]).named_parameters()]
                for pname, shadow in zip(names, ema.shadow_params):
                    tensors[f"ema.{name}.{pname}"] = shadow.detach().contiguous()
                ema_state = ema.state_dict()
                ema_state.pop("shadow_params")
                state["ema"][name] = ema_state
            if tensors:
                save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(path / EMA_NAME))
            (path / STATE_NAME).write_text(json.dumps(state, indent=2) + "\n")  # written last: marks it complete
        acc.wait_for_everyone()
        if acc.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(path, final)
            if run.checkpoints_total_limit:
                old = [p for p in list_checkpoints(self.output_dir) if p != final]
                for stale in old[: max(0, len(old) - run.checkpoints_total_limit + 1)]:
                    shutil.rmtree(stale)
        acc.wait_for_everyone()
        logger.info("saved checkpoint %s", final)
        return final

    def load_checkpoint(self, path: Path) -> None:
        from safetensors.torch import load_file

        acc = self.accelerator
        state = check_checkpoint(path)
        if sorted(state["trainable"]) != sorted(self.trainable):
            raise ValueError(
                f"{path}: the checkpoint trained {state['trainable']} but this run trains {list(self.trainable)}; "
                "use the same --train_unet/--train_text_encoder flags to resume"
            )
        try:
            acc.load_state(str(path))
        except Exception as err:  # accelerate/torch errors on a damaged file: name the checkpoint, not a traceback
            raise ValueError(f"{path}: the checkpoint cannot be loaded ({type(err).__name__}: {err}); resume from an "
                             "earlier one with --resume_from_checkpoint checkpoint-STEP") from err  # fmt: skip
        rng = path / RNG_NAME.format(rank=acc.process_index)
        if rng.is_file():
            self.noise_rng.set_state(load_file(str(rng))["noise_rng"])
        else:
            logger.warning("%s: no %s; the noise sequence restarts", path, rng.name)
        tensors = load_file(str(path / EMA_NAME)) if self.ema and (path / EMA_NAME).is_file() else {}
        for name, ema in self.ema.items():
            if name not in state["ema"] or not tensors:
                logger.warning("%s: no EMA of %s saved; the EMA restarts from the current weights", path, name)
                continue
            names = [n for n, _ in acc.unwrap_model(self.trainable[name]).named_parameters()]
            ema_state = dict(state["ema"][name])
            ema_state["shadow_params"] = [tensors[f"ema.{name}.{n}"].to(acc.device) for n in names]
            ema.load_state_dict(ema_state)
        self.global_step = int(state["global_step"])
        self.elapsed = float(state["elapsed_seconds"])
        same_layout = (
            state["train_batch_size"] == self.args.optim.train_batch_size
            and state["dataloader_num_workers"] == self.args.data.dataloader_num_workers
            and state["num_processes"] == acc.num_processes
            and state["seed"] == self.args.run.seed
        )
        if not same_layout:
            logger.warning(
                "%s: batch size, workers, processes or seed changed since the checkpoint: the data stream cannot "
                "continue exactly where it stopped and restarts from a new seeded order",
                path,
            )
            self.data_seed = self.args.run.seed + self.global_step
        if acc.is_main_process:
            _truncate_log(self.log_path, self.global_step)
        logger.info("resumed from %s at step %d", path, self.global_step)

    # ------------------------------------------------------------------------------------- validation
    def _swap_in_ema(self) -> None:
        for name, ema in self.ema.items():
            params = self.accelerator.unwrap_model(self.trainable[name]).parameters()
            ema.store(params)
            ema.copy_to(self.accelerator.unwrap_model(self.trainable[name]).parameters())

    def _swap_out_ema(self) -> None:
        for name, ema in self.ema.items():
            ema.restore(self.accelerator.unwrap_model(self.trainable[name]).parameters())

    def _sd_pipeline(self, unet=None, text_encoder=None, controlnet=None, vae=None):
        """A diffusers pipeline of the run's models: ControlNet, or plain for a glyph-input UNet without one."""
        from diffusers import StableDiffusionControlNetPipeline, StableDiffusionPipeline

        acc, m = self.accelerator, self.models
        parts = dict(
            vae=vae or m.vae,
            text_encoder=text_encoder or acc.unwrap_model(self.trainable.get("text_encoder", m.text_encoder)),
            tokenizer=m.tokenizer,
            unet=unet or acc.unwrap_model(self.trainable.get("unet", m.unet)),
            scheduler=m.scheduler,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
        )
        if "controlnet" not in self.trainable:
            return StableDiffusionPipeline(**parts)
        controlnet = controlnet or acc.unwrap_model(self.trainable["controlnet"])
        return StableDiffusionControlNetPipeline(controlnet=controlnet, **parts)

    def _inference_copy(self, name: str):
        """The module ``name`` ready for inference in the frozen dtype: itself, or a cast copy if it is trained."""
        import torch

        acc, m = self.accelerator, self.models
        if name not in self.trainable:
            return getattr(m, name)
        net = acc.unwrap_model(self.trainable[name])
        if self.weight_dtype == torch.float32:
            net.eval()
            return net
        from accelerate import init_empty_weights

        with init_empty_weights():
            copy = type(net).from_config(net.config) if hasattr(type(net), "from_config") else type(net)(net.config)
        copy.load_state_dict(net.state_dict(), assign=True)  # shares storage until the cast below copies it
        return copy.to(acc.device, dtype=self.weight_dtype).eval()

    def _pipeline_config(self):
        from textgen.pipeline import PipelineConfig

        run = self.args.run
        return PipelineConfig(
            control="glyph",
            height=self.resolution,
            width=self.resolution,
            num_inference_steps=run.validation_inference_steps,
            guidance_scale=run.validation_guidance_scale,
        )

    def validate(self) -> dict[str, Any] | None:
        """Generates the validation layouts (EMA weights when enabled), saves a grid, logs OCR scores."""
        import numpy as np
        import torch

        from textgen.pipeline import PosterPipeline

        acc, run = self.accelerator, self.args.run
        acc.wait_for_everyone()
        if not acc.is_main_process:
            acc.wait_for_everyone()
            return None
        t0 = time.perf_counter()
        self._swap_in_ema()
        # Generate in the frozen models' dtype, as users run the result. Trainable fp32 weights get a lower-precision
        # copy (autocast cannot mix them: CPU group_norm refuses bf16 inputs with fp32 weights).
        names = ("unet", "text_encoder", "controlnet") if "controlnet" in self.trainable else ("unet", "text_encoder")
        nets = {name: self._inference_copy(name) for name in names}
        rows, images, layouts = [], [], []
        try:
            pipe = PosterPipeline(
                self._sd_pipeline(**nets), planner="rule", control="glyph", config=self._pipeline_config()
            )
            with torch.no_grad():
                for i, sample in enumerate(self.validation):
                    out = pipe(
                        sample.prompt,
                        layout=sample.layout,
                        num_images_per_prompt=run.num_validation_images,
                        num_inference_steps=run.validation_inference_steps,
                        guidance_scale=run.validation_guidance_scale,
                        generator=torch.Generator(device="cpu").manual_seed(run.seed + i),
                        height=self.resolution,
                        width=self.resolution,
                        progress=False,
                    )
                    rows.append([out.glyph, *out.images])
                    images.extend(out.images)
                    layouts.extend([out.layout] * len(out.images))
        finally:
            self._swap_out_ema()
            for net in self.trainable.values():
                net.train()
        folder = self.output_dir / "validation"
        folder.mkdir(parents=True, exist_ok=True)
        grid = image_grid(rows, cell=max(self.resolution, 64))
        grid_path = folder / f"step_{self.global_step:06d}.png"
        grid.save(grid_path)
        result: dict[str, Any] = {
            "step": self.global_step,
            "grid": grid_path.name,
            "prompts": [s.prompt for s in self.validation],
        }
        if self.ocr_engine is not None:
            scores = ocr_scores(images, layouts, self.ocr_engine)
            result.update(scores)
            acc.log(
                {"val/sentence_accuracy": scores["sentence_accuracy"], "val/ned": scores["ned"]}, step=self.global_step
            )
        result["seconds"] = round(time.perf_counter() - t0, 3)
        with (folder / "scores.jsonl").open("a") as f:
            f.write(json.dumps(result) + "\n")
        for tracker in acc.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_image("validation", np.asarray(grid), self.global_step, dataformats="HWC")
        scored = (
            f", sentence accuracy {result['sentence_accuracy']:.3f}, NED {result['ned']:.3f}"
            if "ned" in result
            else ""
        )
        logger.info("validation at step %d: %s%s", self.global_step, grid_path, scored)
        acc.wait_for_everyone()
        return result

    # ------------------------------------------------------------------------------------------ saving
    def save_final(self) -> dict[str, str]:
        """Saves ``controlnet`` (when there is one) and ``pipeline`` (when the UNet or text encoder were trained)."""
        from textgen.pipeline import PosterPipeline

        acc = self.accelerator
        acc.wait_for_everyone()
        outputs: dict[str, str] = {}
        if not acc.is_main_process:
            return outputs
        dtype = _dtype(self.args.run.save_dtype)
        self._swap_in_ema()  # training is over: the EMA weights stay in
        trained = {name: acc.unwrap_model(net) for name, net in self.trainable.items()}
        if "controlnet" in trained:
            controlnet_dir = self.output_dir / "controlnet"
            _cast(trained["controlnet"], dtype).save_pretrained(controlnet_dir, safe_serialization=True)
            outputs["controlnet"] = str(controlnet_dir)
        if self.train_unet or self.train_text or self.models.from_scratch:
            # Frozen parts were held in the mixed-precision dtype: take them again at full precision.
            fresh = load_models(self.args.model, self.args.run.seed)
            unet = trained.get("unet", fresh.unet)
            text_encoder = trained.get("text_encoder", fresh.text_encoder)
            for net in (unet, text_encoder, fresh.vae):
                _cast(net, dtype)
            sd = self._sd_pipeline(
                unet=unet, text_encoder=text_encoder, controlnet=trained.get("controlnet"), vae=fresh.vae
            )
            pipeline_dir = self.output_dir / "pipeline"
            PosterPipeline(sd, planner="rule", control="glyph", config=self._pipeline_config()).save_pretrained(
                pipeline_dir
            )
            outputs["pipeline"] = str(pipeline_dir)
        logger.info("saved %s", ", ".join(outputs.values()))
        return outputs


# ==================================================================================================== main
def train(args: TrainArgs) -> dict[str, Any]:
    """Trains with ``args``; returns ``{"global_step", "seconds", "outputs", ...}``."""
    return ControlNetTrainer(args).train()


def run(args: argparse.Namespace) -> int:
    """``textgen train-controlnet``."""
    _configure_logging()
    summary = train(TrainArgs.from_namespace(args))
    saved = ", ".join(summary["outputs"].values())
    print(f"trained to step {summary['global_step']} in {summary['seconds']:.0f} s: {saved}")
    return 0


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point: parses ``argv`` (default ``sys.argv[1:]``) and trains. Returns the run summary."""
    _configure_logging()
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
