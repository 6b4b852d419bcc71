"""The training script's options: four dataclasses (model, data, optimisation, run) and the flags derived from them.

Each option is defined once, as a dataclass field with its type, default and help
(:func:`textgen.core.cliargs.option`); the command line, the validation and ``training_args.json`` all come from
those fields.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from textgen.core.cliargs import add_dataclass_arguments, option
from textgen.pipeline import DEFAULT_GUIDANCE, DEFAULT_STEPS
from textgen.train_data import GLYPH_SOURCES

logger = logging.getLogger("textgen.train_controlnet")

TIMESTEP_SAMPLING = ("uniform", "logit_normal")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
LR_SCHEDULES = ("constant", "constant_with_warmup", "cosine", "linear", "cosine_with_restarts", "polynomial")
PRECISIONS = ("no", "fp16", "bf16")
SAVE_DTYPES = ("fp32", "fp16", "bf16")


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
        add_edit_inputs: Widen a loaded glyph-input UNet to also take the masked image and the mask
            (``StackConfig.inpaint``), the new input weights zero, so training starts from exactly the loaded model
            and teaches it to edit.
    """

    pretrained_model: str | None = option("diffusers SD folder or hub id, or a saved PosterPipeline folder", None)
    init_config: str | None = option(
        "build the stack from scratch: StackConfig JSON, e.g. '{\"resolution\": 128}', or a file", None
    )
    controlnet: str | None = option("ControlNet folder or hub id to start from (default: from the UNet)", None)
    train_unet: bool = option("train the UNet jointly (needed from scratch)", False)
    train_text_encoder: bool = option("train the text encoder too", False)
    local_files_only: bool = option("never touch the network when loading models", False)
    add_edit_inputs: bool = option(
        "give a loaded glyph-input UNet the masked image and mask as inputs (zero-initialised): learn to edit", False
    )

    def validate(self) -> None:
        if self.add_edit_inputs and self.pretrained_model is None:
            raise ValueError(
                "--add_edit_inputs widens a loaded --pretrained_model; from scratch set inpaint in the "
                "--init_config StackConfig"
            )
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

    train_shards: list[str] = option("folders of .tar triple shards, or .tar files", [])
    resolution: int | None = option("training side in pixels (default: the base's)", None)
    caption_dropout: float = option("empty-prompt probability, for guidance", 0.1)
    shuffle_buffer: int = option("samples in each worker's shuffle buffer", 1000)
    dataloader_num_workers: int = option("DataLoader workers rendering glyphs", 1)
    validation_shards: list[str] | None = option("held-out shards: their first layouts and captions validate", None)
    validation_layouts: str | None = option('JSON list of {"prompt": ..., "layout": {...}} to validate on', None)
    num_validation_samples: int = option("layouts taken from --validation_shards", 4)
    glyph_source: str = option("glyph from the layout or stored ink", "render", choices=GLYPH_SOURCES)
    in_memory: bool = option("decode the training set once into tensors on the device", False)
    curriculum_shards: list[str] | None = option("first-stage shards for --curriculum_steps (needs --in_memory)", None)
    curriculum_steps: int = option("steps on --curriculum_shards first", 0)
    memory_cache: str | None = option("folder keeping --in_memory sets decoded, for runs sharing their data", None)

    def validate(self) -> None:
        from textgen.core.shards import shard_paths

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
        whole_mask_share: For a UNet that edits (``StackConfig.inpaint``): the share of samples masked whole
            (generation); the others mask some of their text boxes (:func:`textgen.train_loss.edit_masks`).
    """

    train_batch_size: int = option("samples per device per micro-batch", 4)
    gradient_accumulation_steps: int = option("micro-batches per optimizer step", 1)
    learning_rate: float = option("peak learning rate (1e-5; ~1e-3 from scratch)", 1e-5)
    scale_lr: bool = option("multiply the lr by batch x accumulation x processes", False)
    lr_scheduler: str = option("learning-rate schedule", "constant", choices=LR_SCHEDULES)
    lr_warmup_steps: int = option("linear warm-up steps", 500)
    lr_num_cycles: int = option("cycles of cosine_with_restarts", 1)
    adam_beta1: float = option("AdamW beta1", 0.9)
    adam_beta2: float = option("AdamW beta2", 0.999)
    adam_weight_decay: float = option("AdamW weight decay", 1e-2)
    adam_epsilon: float = option("AdamW epsilon", 1e-8)
    use_8bit_adam: bool = option("bitsandbytes 8-bit AdamW (GPU)", False)
    max_grad_norm: float = option("gradient clipping norm, 0 disables", 1.0)
    gradient_checkpointing: bool = option("trade compute for activation memory", False)
    snr_gamma: float | None = option("Min-SNR loss weighting gamma (5.0 recommended); default plain MSE", None)
    text_loss_weight: float = option(
        "extra MSE weight on latent cells at the glyph's ink: they count 1 + this (0 = plain MSE)", 0.0
    )
    prediction_type: str | None = option(
        "override the scheduler's (needs --train_unet)", None, choices=PREDICTION_TYPES
    )
    use_ema: bool = option("EMA of the trainable weights; the EMA weights are saved", False)
    ema_decay: float = option("largest EMA decay, reached after warm-up", 0.9999)
    timestep_sampling: str = option("training timesteps", "uniform", choices=TIMESTEP_SAMPLING)
    ocr_loss_weight: float = option("text-perceptual (recognizer CTC) loss weight", 0.0)
    recognizer: str | None = option("textgen train-recognizer folder for --ocr_loss_weight", None)
    whole_mask_share: float = option("editing UNet: share of samples masked whole (generation), the rest boxes", 0.5)

    def validate(self) -> None:
        if not 0.0 <= self.whole_mask_share <= 1.0:
            raise ValueError(f"--whole_mask_share must be in [0, 1], got {self.whole_mask_share}")
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

    output_dir: str = option("checkpoints, logs, validation images and trained models", "train-controlnet-out")
    seed: int = option("seed of init, data order, noise and validation", 0)
    max_train_steps: int = option("optimizer steps in total", 1000)
    mixed_precision: str = option("frozen-model dtype + autocast", "no", choices=PRECISIONS)
    checkpointing_steps: int = option("resumable checkpoint every N steps, 0 = off", 500)
    checkpoints_total_limit: int | None = option("keep at most N checkpoints", None)
    resume_from_checkpoint: str | None = option("'latest' or a checkpoint-STEP folder", None)
    validation_steps: int = option("validation images every N steps, 0 = off", 500)
    num_validation_images: int = option("images per validation layout", 2)
    validation_inference_steps: int = option(
        "denoising steps when validating (saved as the model's default)", DEFAULT_STEPS
    )
    validation_guidance_scale: float = option(
        "guidance when validating (saved as the model's default)", DEFAULT_GUIDANCE
    )
    validation_ocr: str = option("OCR engine scoring validation images, or 'none'", "rapidocr")
    report_to: str = option("tracker", "tensorboard", choices=["tensorboard", "none"])
    num_threads: int | None = option("torch threads of the training process (CPU)", None)
    allow_tf32: bool = option("TF32 matmuls on Ampere+ GPUs", False)
    save_dtype: str = option("dtype of the saved models", "fp32", choices=SAVE_DTYPES)
    text_cache_size: int = option("prompt embeddings cached when the encoder is frozen", 1024)
    max_train_seconds: float | None = option("wall-clock training budget: stop and save when spent", None)

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


# ============================================================================================ command line
ARGUMENT_GROUPS = (("model", ModelArgs), ("data", DataArgs), ("optimisation", OptimArgs), ("run", RunArgs))
REQUIRED = ("train_shards", "output_dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the training options to ``parser``: one flag per dataclass field, grouped like :class:`TrainArgs`.

    Each flag has diffusers' spelling (``--train_batch_size``) and textgen's CLI spelling (``--train-batch-size``);
    booleans also take ``--no-...``.
    """
    for title, klass in ARGUMENT_GROUPS:
        add_dataclass_arguments(parser, klass, required=REQUIRED, title=title)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_controlnet", description="Train a glyph ControlNet.")
    add_arguments(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> TrainArgs:
    """Parses the command line into :class:`TrainArgs` (not yet validated)."""
    return TrainArgs.from_namespace(build_parser().parse_args(argv))
