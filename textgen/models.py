"""Model components built from configs: small Stable-Diffusion-shaped stacks that need no download.

textgen's own models (and every test) use the same architecture as the users' big ones — a diffusers
``UNet2DConditionModel``, a glyph ``ControlNetModel``, a CLIP text encoder and tokenizer — only smaller. Two
image spaces are offered:

* ``"vae"``: a small ``AutoencoderKL`` (f = 2^(len(vae_channels) - 1)), like Stable Diffusion;
* ``"unshuffle"``: :class:`PixelUnshuffleAutoencoder`, a lossless space-to-depth (``pixel_unshuffle``) that
  turns a 128x128x3 image into a 32x32x48 "latent" with nothing to train. It plugs into diffusers pipelines
  where the VAE goes, so ``StableDiffusionControlNetPipeline`` runs it unchanged.

The tokenizer is character-level (every byte-level symbol is a token), built in memory: spelling is visible
to the text encoder, and no vocabulary file has to be downloaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class _UnshuffleLatents:
    """Stands in for a VAE's latent distribution: the encoding is exact, so sampling returns it."""

    def __init__(self, latents: torch.Tensor):
        self.latents = latents

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.latents

    def mode(self) -> torch.Tensor:
        return self.latents

    @property
    def mean(self) -> torch.Tensor:
        return self.latents


@dataclass
class _EncoderOutput:
    latent_dist: _UnshuffleLatents


@dataclass
class _DecoderOutput:
    sample: torch.Tensor


class PixelUnshuffleAutoencoder(ModelMixin, ConfigMixin):
    """A lossless, parameter-free "autoencoder": space-to-depth by ``factor`` and back.

    It exposes what diffusers pipelines read from a VAE: ``config.block_out_channels`` (its length gives the
    pipeline's scale factor, ``2 ** (len - 1) == factor``), ``config.scaling_factor``, ``encode(x).latent_dist``
    and ``decode(z).sample``. Images in ``[-1, 1]`` map to latents in ``[-1, 1]`` times ``scaling_factor``.

    Args:
        in_channels: Image channels.
        factor: Downsampling factor, a power of two.
        scaling_factor: Multiplies latents (pipelines divide by it before decoding).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        factor: int = 4,
        scaling_factor: float = 1.0,
        block_out_channels=None,
        latent_channels: int | None = None,
    ):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"factor must be a power of two, got {factor}")
        levels = int(math.log2(factor)) + 1
        # diffusers derives vae_scale_factor = 2 ** (len(block_out_channels) - 1) from this
        self.register_to_config(block_out_channels=[in_channels] * levels, latent_channels=in_channels * factor**2)
        # One stored scalar: keeps .dtype/.device meaningful for pipelines that read them, and gives
        # save_pretrained a weights file to write (diffusers refuses to load a model folder without one).
        self.register_buffer("anchor", torch.zeros(1))

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        latents = torch.nn.functional.pixel_unshuffle(x, self.config.factor) * self.config.scaling_factor
        out = _EncoderOutput(latent_dist=_UnshuffleLatents(latents))
        return out if return_dict else (out.latent_dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        sample = torch.nn.functional.pixel_shuffle(z / self.config.scaling_factor, self.config.factor)
        return _DecoderOutput(sample=sample) if return_dict else (sample,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).latent_dist.mode()).sample


def build_char_tokenizer(max_length: int = 32):
    """A character-level ``CLIPTokenizer`` built in memory (no vocabulary file, no download).

    Every byte-level symbol is a token (with and without CLIP's ``</w>`` end-of-word suffix), so any string is
    encoded letter by letter. Save it with ``save_pretrained`` and it loads back with ``CLIPTokenizer``.

    Args:
        max_length: Sequence length the text encoder is built for (prompts are padded/truncated to it).
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    for symbol in alphabet:
        vocab[symbol + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


@dataclass(frozen=True)
class StackConfig:
    """Sizes of a small SD-shaped stack. Defaults are test-sized; the shipped model's recipe enlarges them.

    Args:
        resolution: Image side in pixels.
        space: ``"unshuffle"`` (lossless space-to-depth) or ``"vae"`` (small AutoencoderKL, random init).
        factor: Downsampling factor of the image space (power of two).
        unet_channels: UNet ``block_out_channels``; one down/up block per entry, cross-attention in all but
            the first.
        layers_per_block: ResNet layers per UNet block.
        attention_head_dim: Channels per attention head.
        text_width: Text encoder hidden size (= the UNet's cross-attention dimension).
        text_layers: Text encoder layers.
        text_heads: Text encoder attention heads.
        max_text_length: Tokens per prompt.
        controlnet_embedding: ControlNet conditioning-embedding channels; ``None`` derives them from
            ``factor`` (its length must be log2(factor) + 1 so the control image lands on the latent grid).
        prediction_type: ``"sample"`` (predict the clean latent; learns fast from scratch), ``"epsilon"`` or
            ``"v_prediction"``.
        norm_num_groups: GroupNorm groups in UNet and ControlNet.
        vae_channels: Encoder/decoder channels of the small VAE (``space="vae"``).
        controlnet_zero_init: Zero-initialise the ControlNet's output convolutions (the ControlNet paper's
            choice, which protects a pretrained base from a random branch). With a base trained from scratch there
            is nothing to protect, and the zero start keeps the glyph path silent for hundreds of steps; ``False``
            gives those convolutions PyTorch's default random init so the glyph reaches the UNet from step 0.
        glyph_concat: Also feed the glyph to the UNet's input: the ink mask, space-to-depth by ``factor``
            (``factor**2`` channels on the latent grid), concatenated to the noisy latent (as inpainting UNets take
            their mask). Trained from scratch, this direct path draws readable words within a few hundred CPU steps
            where the ControlNet alone had not started (recipes/README.md); the ControlNet stays and learns on top.
            :class:`textgen.pipeline.PosterPipeline` and the trainer detect such a UNet from its ``in_channels``.
        controlnet: Build a glyph ControlNet beside the UNet. ``False`` (needs ``glyph_concat``) leaves the glyph to
            the UNet's input alone: a third cheaper per step, and the study in recipes/README.md measures what the
            ControlNet adds.
        inpaint: Also feed the UNet the image to edit: the masked image in the image space (``latent`` channels,
            zero where masked) and the mask space-to-depth like the glyph (``factor**2`` channels), after the glyph
            (needs ``glyph_concat``). Trained with text boxes masked and, for a share of samples, the whole image
            (which is generation: nothing known, everything masked), one model generates and edits — AnyText's and
            TextDiffuser's design.
    """

    resolution: int = 64
    space: str = "unshuffle"
    factor: int = 4
    unet_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    text_width: int = 32
    text_layers: int = 2
    text_heads: int = 2
    max_text_length: int = 32
    controlnet_embedding: tuple[int, ...] | None = None
    prediction_type: str = "sample"
    norm_num_groups: int = 8
    vae_channels: tuple[int, ...] = field(default=(16, 32, 32))
    controlnet_zero_init: bool = True
    glyph_concat: bool = False
    controlnet: bool = True
    inpaint: bool = False

    def embedding_channels(self) -> tuple[int, ...]:
        if self.controlnet_embedding is not None:
            return self.controlnet_embedding
        levels = int(math.log2(self.factor)) + 1
        return (16, 32, 96, 256)[:levels] if levels <= 4 else tuple(16 * 2**i for i in range(levels))


def build_stack(config: StackConfig | None = None, seed: int = 0) -> dict[str, Any]:
    """Builds UNet, ControlNet, image space, text encoder, tokenizer and scheduler with random weights.

    Args:
        config: Sizes (:class:`StackConfig`).
        seed: Seed for the random initialisation.

    Returns:
        A dict with keys ``unet``, ``controlnet`` (``None`` when ``config.controlnet`` is off), ``vae``,
        ``text_encoder``, ``tokenizer``, ``scheduler`` — the components of ``StableDiffusionControlNetPipeline``.

    Raises:
        ValueError: sizes that do not fit, or no glyph path at all (no ControlNet and no ``glyph_concat``).
    """
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = config or StackConfig()
    if not cfg.controlnet and not cfg.glyph_concat:
        raise ValueError("a stack without a ControlNet needs glyph_concat=True: the glyph must reach the UNet somehow")
    if cfg.inpaint and not cfg.glyph_concat:
        raise ValueError("inpaint=True needs glyph_concat=True: the masked image and mask follow the glyph channels")
    if cfg.resolution % cfg.factor:
        raise ValueError(f"resolution {cfg.resolution} is not a multiple of the image-space factor {cfg.factor}")
    torch.manual_seed(seed)
    if cfg.space == "unshuffle":
        vae = PixelUnshuffleAutoencoder(in_channels=3, factor=cfg.factor)
        latent_channels = 3 * cfg.factor**2
    elif cfg.space == "vae":
        levels = int(math.log2(cfg.factor)) + 1
        channels = tuple(cfg.vae_channels[:levels]) + (cfg.vae_channels[-1],) * max(0, levels - len(cfg.vae_channels))
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=channels,
            latent_channels=4,
            norm_num_groups=min(8, channels[0]),
            layers_per_block=1,
        )
        latent_channels = 4
    else:
        raise ValueError(f"space must be 'unshuffle' or 'vae', got {cfg.space!r}")

    n = len(cfg.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=cfg.resolution // cfg.factor,
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=cfg.unet_channels,
        layers_per_block=cfg.layers_per_block,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cfg.text_width,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups,
    )
    controlnet = (
        ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=cfg.embedding_channels())
        if cfg.controlnet
        else None
    )
    if controlnet is not None and not cfg.controlnet_zero_init:
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.reset_parameters()
        controlnet.controlnet_cond_embedding.conv_out.reset_parameters()
    if cfg.glyph_concat:
        unet = _widen_input(unet, extra=cfg.factor**2 + (latent_channels + cfg.factor**2 if cfg.inpaint else 0))
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=514,
            hidden_size=cfg.text_width,
            intermediate_size=cfg.text_width * 4,
            num_hidden_layers=cfg.text_layers,
            num_attention_heads=cfg.text_heads,
            max_position_embeddings=cfg.max_text_length,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        )
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=cfg.prediction_type,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="trailing",  # few-step sampling starts at t=999 (pure noise), as trained
    )
    return {
        "unet": unet,
        "controlnet": controlnet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": build_char_tokenizer(cfg.max_text_length),
        "scheduler": scheduler,
    }


def _widen_input(unet, extra: int, zero: bool = False):
    """A copy of ``unet`` whose ``conv_in`` takes ``extra`` more input channels.

    The new weights get the default init, or zeros (``zero``: the copy computes exactly what ``unet`` did, whatever
    the new channels hold — how a trained model starts learning new inputs).
    """
    from diffusers import UNet2DConditionModel

    wide = UNet2DConditionModel.from_config({**unet.config, "in_channels": unet.config.in_channels + extra})
    state = unet.state_dict()
    weight = wide.conv_in.weight.detach().clone()
    if zero:
        weight.zero_()
    weight[:, : unet.config.in_channels] = state["conv_in.weight"]
    state["conv_in.weight"] = weight
    wide.load_state_dict(state)
    return wide if wide.dtype == unet.dtype else wide.to(unet.dtype)


@dataclass(frozen=True)
class UNetInputs:
    """What a UNet takes beside the noisy latent, in channel order: glyph, masked image, mask.

    Attributes:
        glyph: Glyph channels (``factor**2``; 0 for a standard UNet).
        masked: Masked-image channels (the latent's; 0 for a UNet that cannot edit).
        mask: Mask channels (``factor**2``; 0 for a UNet that cannot edit).
    """

    glyph: int = 0
    masked: int = 0
    mask: int = 0

    @property
    def edits(self) -> bool:
        """Whether the UNet takes the image to edit (``StackConfig.inpaint``)."""
        return self.masked > 0


def unet_inputs(unet, latent_channels: int, factor: int) -> UNetInputs:
    """Reads from ``unet.config.in_channels`` which inputs it takes (see :class:`UNetInputs`).

    Raises:
        ValueError: a channel count that is none of: the latent; + glyph; + glyph, masked image and mask.
    """
    extra = int(unet.config.in_channels) - int(latent_channels)
    cells = factor * factor
    if extra == 0:
        return UNetInputs()
    if extra == cells:
        return UNetInputs(glyph=cells)
    if extra == 2 * cells + latent_channels:
        return UNetInputs(glyph=cells, masked=latent_channels, mask=cells)
    raise ValueError(
        f"a UNet with {unet.config.in_channels} input channels over a {latent_channels}-channel latent (factor "
        f"{factor}) is none of: standard ({latent_channels}), glyph input ({latent_channels + cells}), editing "
        f"({latent_channels + 2 * cells + latent_channels})"
    )


def add_edit_inputs(unet, latent_channels: int, factor: int):
    """A glyph-input UNet widened to also take the masked image and mask, the new weights zero (see ``_widen_input``).

    Raises:
        ValueError: ``unet`` is not a glyph-input UNet (already editing, or standard).
    """
    inputs = unet_inputs(unet, latent_channels, factor)
    if not inputs.glyph or inputs.edits:
        raise ValueError(
            f"only a glyph-input UNet can be given edit inputs; this one takes {unet.config.in_channels} channels"
            + (" and can edit already" if inputs.edits else "")
        )
    return _widen_input(unet, extra=latent_channels + factor * factor, zero=True)


def glyph_to_latent_grid(ink, channels: int):
    """The glyph ink mask, space-to-depth onto the latent grid, as a glyph-input UNet takes it.

    Args:
        ink: ``(B, 1, H, W)`` tensor, 1 where there is ink (text) and 0 elsewhere.
        channels: The UNet's glyph channels (``factor**2``).

    Returns:
        ``(B, channels, H / factor, W / factor)``.

    Raises:
        ValueError: ``channels`` is not a square, or the image side is not a multiple of its root.
    """
    import torch.nn.functional as F

    factor = math.isqrt(channels)
    if factor * factor != channels or ink.shape[-1] % factor or ink.shape[-2] % factor:
        raise ValueError(
            f"a UNet with {channels} glyph channels needs a square factor dividing the glyph size, "
            f"got a {tuple(ink.shape[-2:])} glyph"
        )
    return F.pixel_unshuffle(ink, factor)


def unet_condition(inputs: UNetInputs, vae, glyph, scale: float = 1.0, image=None, mask=None) -> torch.Tensor:
    """What a glyph-input UNet takes beside the latent at inference, ``(1, C, h, w)`` in :class:`UNetInputs` order.

    Args:
        inputs: The UNet's inputs (:func:`unet_inputs`).
        vae: The image space (encodes the masked image).
        glyph: The glyph, a PIL image, black text on white, at the output size.
        scale: Multiplies the glyph's ink (0 blanks the glyph condition).
        image: For a UNet that edits: the image to edit (resized to the glyph's size); ``None`` for generation.
        mask: ``"L"``, white = repaint; ``None`` masks everything (generation: nothing is known).
    """
    import numpy as np
    from PIL import Image

    ink = 1.0 - np.asarray(glyph.convert("L"), dtype=np.float32) / 255.0
    parts = [glyph_to_latent_grid(torch.from_numpy(ink)[None, None] * scale, inputs.glyph)]
    if inputs.edits:
        size = (ink.shape[1], ink.shape[0])
        holes = np.ones(ink.shape, np.float32)
        if mask is not None:
            holes = (np.asarray(mask.convert("L").resize(size, Image.Resampling.NEAREST), np.float32) > 127) * 1.0
        pixels = np.zeros((*ink.shape, 3), np.float32)  # what training feeds: the image, 0 (grey) where masked
        if image is not None:
            rgb = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float32) / 127.5 - 1.0
            pixels = rgb * (1.0 - holes[..., None])
        with torch.no_grad():
            pixels = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device=vae.device, dtype=vae.dtype)
            known = vae.encode(pixels).latent_dist.mode().float().cpu() * vae.config.scaling_factor
        parts += [known, glyph_to_latent_grid(torch.from_numpy(holes.astype(np.float32))[None, None], inputs.mask)]
    return torch.cat(parts, dim=1)


class GlyphInputUNet(torch.nn.Module):
    """Presents a glyph-input UNet to diffusers pipelines as a standard one, with a fixed glyph.

    Diffusers' ControlNet pipeline sizes the latents from ``unet.config.in_channels`` and calls the UNet with the
    latent alone; this wrapper reports the latent channels in its ``config`` and concatenates the glyph (repeated
    over the batch, which classifier-free guidance doubles) before calling the real UNet.

    Args:
        unet: The UNet trained with the glyph concatenated to its input.
        glyph: ``(1, C, h, w)`` glyph on the latent grid (:func:`glyph_to_latent_grid`), followed, for a UNet
            that edits, by the masked image's latent and the mask (:class:`UNetInputs`' order).
    """

    def __init__(self, unet, glyph) -> None:
        from diffusers.configuration_utils import FrozenDict

        super().__init__()
        self.unet = unet
        self.glyph = glyph
        self.config = FrozenDict({**unet.config, "in_channels": unet.config.in_channels - glyph.shape[1]})

    @property
    def dtype(self):
        return self.unet.dtype

    @property
    def device(self):
        return self.unet.device

    def forward(self, sample, timestep, *args, **kwargs):
        glyph = self.glyph.to(device=sample.device, dtype=sample.dtype).expand(sample.shape[0], -1, -1, -1)
        return self.unet(torch.cat([sample, glyph], dim=1), timestep, *args, **kwargs)
