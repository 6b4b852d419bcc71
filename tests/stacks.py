"""The one tiny Stable-Diffusion-shaped stack of the tests: built from configs in memory, no download."""

from __future__ import annotations

import torch

from textgen.models import StackConfig, build_stack


def tiny_sd(space: str = "unshuffle", glyph_concat: bool = False, live_controlnet: bool = True, seed: int = 0):
    """A random ``StableDiffusionControlNetPipeline`` at 64x64.

    Args:
        space: ``"unshuffle"`` (factor 4) or ``"vae"`` (factor 8).
        glyph_concat: The UNet also takes the glyph on its input (the shipped model's shape).
        live_controlnet: Give the ControlNet's output convolutions random weights (a fresh one starts at zero,
            a no-op), so the condition reaches the UNet as in a trained one.
        seed: Seed of the weights.
    """
    from diffusers import StableDiffusionControlNetPipeline

    factor = 4 if space == "unshuffle" else 8
    components = build_stack(StackConfig(resolution=64, space=space, factor=factor, glyph_concat=glyph_concat), seed)
    if live_controlnet:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in components["controlnet"].named_parameters():
                if name.startswith(
                    ("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")
                ):
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return StableDiffusionControlNetPipeline(
        **components, safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False
    )
