"""The training losses: the DDPM target by prediction type, Min-SNR and text-region weights, timestep sampling, the
text-perceptual (OCR) loss, and the prompt-embedding cache of a frozen text encoder."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from textgen.train_args import PREDICTION_TYPES, TIMESTEP_SAMPLING


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


def conditioned_input(noisy, inputs, ink, pixels, boxes, vae, whole_share: float, generator):
    """The UNet's input: the noisy latent, then what it takes beside it (:class:`textgen.models.UNetInputs`).

    A glyph-input UNet (``StackConfig.glyph_concat``) gets the ink on the latent grid; one that edits
    (``StackConfig.inpaint``) also the image with :func:`edit_masks` blanked out, encoded, and the mask.
    """
    import torch

    from textgen.models import glyph_to_latent_grid

    if not inputs.glyph:
        return noisy
    parts = [noisy, glyph_to_latent_grid(ink, inputs.glyph)]
    if inputs.edits:
        mask = edit_masks(boxes, pixels.shape[-1], whole_share, generator).to(device=pixels.device, dtype=pixels.dtype)
        with torch.no_grad():
            known = vae.encode(pixels * (1 - mask)).latent_dist.mode() * vae.config.scaling_factor
        parts += [known.float(), glyph_to_latent_grid(mask.float(), inputs.mask)]
    return torch.cat(parts, dim=1)


def edit_masks(boxes, size: int, whole_share: float, generator, max_margin: float = 0.3):
    """Training masks for a UNet that edits (``StackConfig.inpaint``): 1 = repaint, 0 = known.

    Each sample is, with probability ``whole_share``, masked whole (generation: nothing is known); otherwise a
    random non-empty subset of its text boxes is masked, each box grown by a random margin of up to ``max_margin``
    x its height (what an edit masks: a line and its surroundings). A sample without boxes is masked whole.

    Args:
        boxes: ``(B, K, 4)`` pixel boxes ``x0, y0, x1, y1``; empty rows (``x1 <= x0``) are padding.
        size: Image side in pixels.
        whole_share: Share of samples masked whole, in [0, 1].
        generator: The ``torch.Generator`` of the run's noise (masks follow the seed).
        max_margin: Largest growth of a box, as a fraction of its height.

    Returns:
        ``(B, 1, size, size)`` float masks.
    """
    import torch

    boxes = boxes.float().cpu()
    b, k = boxes.shape[:2]
    draws = torch.rand(b, 1 + 2 * k, generator=generator, device=generator.device).cpu()
    masks = torch.zeros(b, 1, size, size)
    for i in range(b):
        valid = [j for j in range(k) if boxes[i, j, 2] > boxes[i, j, 0] and boxes[i, j, 3] > boxes[i, j, 1]]
        if draws[i, 0] < whole_share or not valid:
            masks[i] = 1.0
            continue
        chosen = [j for j in valid if draws[i, 1 + j] < 0.5] or [valid[int(draws[i, 1 + valid[0]] * len(valid))]]
        for j in chosen:
            x0, y0, x1, y1 = boxes[i, j].tolist()
            grow = float(draws[i, 1 + k + j]) * max_margin * (y1 - y0)
            left, top = max(0, int(x0 - grow)), max(0, int(y0 - grow))
            right, bottom = min(size, int(x1 + grow + 0.999)), min(size, int(y1 + grow + 0.999))
            masks[i, 0, top:bottom, left:right] = 1.0
    return masks
