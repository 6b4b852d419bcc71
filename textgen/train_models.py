"""The models of a training run: built from a StackConfig or loaded from a folder, all in fp32, and dtype helpers."""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textgen.train_args import ModelArgs

logger = logging.getLogger("textgen.train_controlnet")

# Libraries a model_index.json may name for a component; anything else is refused (no arbitrary imports).
_COMPONENT_LIBRARIES = ("diffusers", "transformers", "textgen.models")


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
    if model.add_edit_inputs:
        from textgen.models import add_edit_inputs

        parts["unet"] = add_edit_inputs(parts["unet"], int(parts["vae"].config.latent_channels), vae_factor)
        logger.info("the UNet now also takes the masked image and mask (%d input channels)",
                    parts["unet"].config.in_channels)  # fmt: skip
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
