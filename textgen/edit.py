"""Editing text in an existing image, and OCR-verified repair of the words that came out wrong.

:func:`edit_image` repaints the boxes of a layout with their new texts and leaves every other pixel exactly as it
was. Each box is edited in a square window around it, scaled to the model's native size. A model trained to edit
(``StackConfig.inpaint``: its UNet takes the masked image and the mask) repaints the masked region itself in one
pass (``method="native"``, AnyText's and TextDiffuser's one-model design): it sees what is around the hole, removes
the old text and paints the new glyph. Any other model :class:`~textgen.pipeline.PosterPipeline` loads edits
without training for it (``method="blend"``):

1. the old text is removed: the box's region is filled smoothly from its surroundings (:func:`fill_background`);
2. the model paints the new glyph by **blended latent diffusion** (Avrahami et al., 2023): it denoises the window
   from noise under the new glyph, and after every step the latents away from the new glyph's ink are put back to
   the filled window's, noised to that step's level, so the new letters grow on the filled background and take
   its light and colour;
3. the painted letters (the new glyph's ink, grown a little) are laid over the filled background, the window is
   scaled back, and only the masked pixels are pasted into the image: outside the mask the output is the input,
   bit for bit.

:func:`repair` is Type-R's idea on top of it: after a poster is painted, OCR reads every box; each box whose text
does not read back is masked and repainted, up to ``rounds`` times, keeping the best reading per box. Redrawing one
wrong word costs one window's denoising instead of a whole new image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from textgen.core.layout import Layout, LayoutError, TextBox
from textgen.pipeline_config import EDIT_METHODS  # auto: the model's saved route, else native when it can edit

DEFAULT_MARGIN = 0.15  # the mask is the box grown by this fraction of its height (anti-aliasing, old ink around)
TEXT_WIDTH_IN_WINDOW = 0.8  # an edit window is sized so the box spans this much of it (as the model's titles do)
MAX_TEXT_HEIGHT_IN_WINDOW = 0.35  # ...and at most this much of its height


@dataclass
class EditResult:
    """What :func:`edit_image` returns.

    Attributes:
        image: The edited image (the input outside the mask, exactly).
        mask: The edited region, ``"L"``, 255 inside.
        layout: The boxes and their new texts, in pixels of ``image``.
        reads: What OCR reads in each box afterwards (when an engine was given).
        scores: NED of each box's reading against its new text (1 = exact).
        evaluations: UNet evaluations spent (denoising steps x guidance factor x windows).
    """

    image: Image.Image
    mask: Image.Image
    layout: Layout
    reads: list[str] | None = None
    scores: list[float] | None = None
    evaluations: int = 0
    windows: list[tuple[int, int, int, int]] = field(default_factory=list)


def box_mask(size: tuple[int, int], boxes: Sequence[tuple[float, float, float, float]], margin: float) -> Image.Image:
    """The union of the pixel boxes, each grown by ``margin`` x its height, as an ``"L"`` mask (255 inside)."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for x0, y0, x1, y1 in boxes:
        grow = margin * max(1.0, y1 - y0)
        draw.rectangle(
            (max(0, math.floor(x0 - grow)), max(0, math.floor(y0 - grow)),
             min(size[0], math.ceil(x1 + grow)) - 1, min(size[1], math.ceil(y1 + grow)) - 1),
            fill=255,
        )  # fmt: skip
    return mask


def edit_window(box: tuple[float, float, float, float], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A square window around ``box`` in which the box sits as a title sits on the model's canvas.

    The side makes the box about :data:`TEXT_WIDTH_IN_WINDOW` of the window wide and at most
    :data:`MAX_TEXT_HEIGHT_IN_WINDOW` high; the window is moved (not shrunk) to stay inside the image, and is
    the whole shorter side when the image is smaller.
    """
    x0, y0, x1, y1 = box
    w, h = image_size
    side = max((x1 - x0) / TEXT_WIDTH_IN_WINDOW, (y1 - y0) / MAX_TEXT_HEIGHT_IN_WINDOW, 8.0)
    side = int(math.ceil(min(side, min(w, h))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    return left, top, left + side, top + side


def fill_background(image: Image.Image, mask: Image.Image, iterations: int = 60) -> Image.Image:
    """Fills the masked pixels smoothly from the unmasked ones (harmonic fill, coarse to fine).

    Plain and gradient backgrounds come back as they were under the old text; textures come back as their mean
    tone. No model and no OpenCV: numpy alone.
    """
    import numpy as np

    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    known = np.asarray(mask.convert("L"), dtype=np.float32) < 128
    return Image.fromarray(np.clip(_harmonic(arr, known, iterations), 0, 255).round().astype(np.uint8))


def _harmonic(arr, known, iterations):
    import numpy as np

    h, w = known.shape
    if min(h, w) > 8:  # start from the fill of a half-size copy
        small_known = known[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
        weights = known[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))[..., None]
        sums = (
            (arr[: h // 2 * 2, : w // 2 * 2] * known[: h // 2 * 2, : w // 2 * 2, None])
            .reshape(h // 2, 2, w // 2, 2, -1)
            .sum(axis=(1, 3))
        )
        small = np.where(weights > 0, sums / np.maximum(weights, 1), 0)
        coarse = _harmonic(small, small_known, iterations)
        start = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
        start = np.pad(start, ((0, h - start.shape[0]), (0, w - start.shape[1]), (0, 0)), mode="edge")
    else:
        start = np.where(known[..., None], arr, arr[known].mean(axis=0) if known.any() else 127.0)
    out = np.where(known[..., None], arr, start)
    for _ in range(iterations):
        padded = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        avg = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4
        out = np.where(known[..., None], arr, avg)
    return out


def text_color_name(image: Image.Image, box: tuple[int, int, int, int]) -> str | None:
    """The palette name of the text in a box: the pixels farthest from the box border's colour, their median."""
    import numpy as np

    from textgen.core.colors import PALETTE, nearest_color

    region = np.asarray(image.convert("RGB").crop(box), dtype=np.float32)
    if region.shape[0] < 3 or region.shape[1] < 3:
        return None
    border = np.concatenate([region[0], region[-1], region[:, 0], region[:, -1]])
    distance = np.linalg.norm(region - np.median(border, axis=0), axis=-1)
    ink = distance > max(40.0, np.percentile(distance, 80) * 0.6)
    if ink.sum() < 4:
        return None
    return nearest_color(np.median(region[ink], axis=0), PALETTE)[0]


def edit_route(pipe: Any, method: str = "auto") -> str:
    """The route an edit takes: ``method``, or for ``"auto"`` the model's saved ``edit_method``, else ``"native"``
    when the model learnt to edit and ``"blend"`` otherwise.

    Raises:
        ValueError: ``"native"`` asked of (or saved for) a model that was not trained to edit.
    """
    capable = bool(getattr(pipe, "edits_natively", False))
    saved = getattr(getattr(pipe, "config", None), "edit_method", "auto")
    route = method if method != "auto" else saved if saved != "auto" else ("native" if capable else "blend")
    if route == "native" and not capable:
        raise ValueError("method='native' needs a model trained to edit (its UNet takes the masked image and mask); "
                         "this one does not: use method='blend'")  # fmt: skip
    return route


def check_edit(image: Image.Image, layout: Layout) -> Layout:
    """The layout scaled to the image, checked: every box inside the image, with a non-empty area and text.

    Raises:
        LayoutError: naming the box.
    """
    if not layout.boxes:
        raise LayoutError("nothing to edit: give at least one box with its new text")
    scaled = layout.resized(image.width, image.height)
    scaled.validate()
    for i, (x0, y0, x1, y1) in enumerate(scaled.pixel_boxes()):
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise LayoutError(f"box {i} ({scaled.boxes[i].text!r}) is {x1 - x0}x{y1 - y0} px: too small to paint text")
    return scaled


def edit_image(
    pipe: Any,
    image: Image.Image,
    layout: Layout,
    prompt: str | None = None,
    mask: Image.Image | None = None,
    *,
    margin: float = DEFAULT_MARGIN,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int | None = 0,
    ocr_engine: Any = None,
    method: str = "auto",
) -> EditResult:
    """Repaints the boxes of ``layout`` in ``image`` with their texts (see the module docstring).

    Args:
        pipe: A :class:`~textgen.pipeline.PosterPipeline`.
        image: The image to edit (any size; it is not resized).
        layout: The boxes to repaint and their new texts (normalised, so any canvas size works).
        prompt: What the edited region should look like (default: ``a sign that reads "NEW"``).
        mask: The region to repaint (``"L"``, the image's size, non-zero inside); default: each box grown by
            ``margin`` x its height.
        margin: See ``mask``.
        num_inference_steps: Denoising steps (default: the model's).
        guidance_scale: Classifier-free guidance (default: the model's).
        seed: Seed of the noise (box ``i`` uses ``seed + i``).
        ocr_engine: Read each box afterwards (``reads``/``scores``); ``None`` skips OCR.
        method: ``"native"`` (the model repaints the masked window itself; needs a model trained to edit),
            ``"blend"`` (blended latent diffusion over a filled background; any model) or ``"auto"`` (the model's
            saved ``edit_method``, else native when the model can: :func:`edit_route`).

    Raises:
        LayoutError: a box outside the image, empty, or with unusable text.
        ValueError: a mask of another size than the image; an unknown ``method``, or ``"native"`` with a model
            that was not trained to edit.
    """
    if method not in EDIT_METHODS:
        raise ValueError(f"method must be one of {EDIT_METHODS}, got {method!r}")
    native = edit_route(pipe, method) == "native"
    image = image.convert("RGB")
    scaled = check_edit(image, layout)
    boxes = scaled.pixel_boxes()
    full_mask = mask.convert("L").point(lambda v: 255 if v else 0) if mask is not None else None
    if full_mask is not None and full_mask.size != image.size:
        raise ValueError(f"mask is {full_mask.size[0]}x{full_mask.size[1]}, the image {image.width}x{image.height}")
    if full_mask is None:
        full_mask = box_mask(image.size, boxes, margin)
    out = image.copy()
    evaluations = 0
    windows = []
    for i, (box, text_box) in enumerate(zip(boxes, scaled.boxes)):
        window = edit_window(box, image.size)
        windows.append(window)
        colour = text_color_name(image, box) if prompt is None else None
        region_prompt = prompt or f'a sign with {colour + " " if colour else ""}text that reads "{text_box.text}"'
        patch, used = (_native_window if native else _edit_window)(
            pipe, out, window, box, text_box, full_mask, region_prompt, num_inference_steps, guidance_scale,
            None if seed is None else seed + i,
        )  # fmt: skip
        evaluations += used
        out.paste(patch, window[:2], mask=full_mask.crop(window))  # only the masked pixels change
    result = EditResult(image=out, mask=full_mask, layout=scaled, evaluations=evaluations, windows=windows)
    if ocr_engine is not None:
        from textgen.core.metrics import ned
        from textgen.eval_read import read_boxes

        result.reads = read_boxes(out, scaled, ocr_engine)
        result.scores = [ned(r, t) for r, t in zip(result.reads, scaled.texts)]
    return result


def _window_inputs(pipe, image, window, box, text_box, full_mask, prompt):
    """The window at the model's native size: its pixels, the new text's layout and glyph there, and its mask."""
    from textgen.core.glyph import GlyphOptions, render_glyph

    native_w, native_h = pipe.default_size()
    left, top, right, bottom = window
    crop = image.crop(window).resize((native_w, native_h), Image.Resampling.BICUBIC)
    sx, sy = native_w / (right - left), native_h / (bottom - top)
    local = (
        (box[0] - left) * sx / native_w, (box[1] - top) * sy / native_h,
        (box[2] - left) * sx / native_w, (box[3] - top) * sy / native_h,
    )  # fmt: skip
    local = tuple(min(1.0, max(0.0, v)) for v in local)
    layout = Layout(native_w, native_h, (TextBox(text_box.text, local, font=text_box.font),), caption=prompt)
    glyph = render_glyph(layout, options=GlyphOptions(**pipe.config.glyph_options))
    mask = full_mask.crop(window).resize((native_w, native_h), Image.Resampling.NEAREST)
    return crop, layout, glyph, mask


def _native_window(pipe, image, window, box, text_box, full_mask, prompt, steps, guidance, seed):
    """Edits one window with a model trained to edit: it sees the window with the mask blanked, and the mask."""
    import torch

    crop, _, glyph, mask = _window_inputs(pipe, image, window, box, text_box, full_mask, prompt)
    steps = steps or pipe.config.num_inference_steps
    guidance = pipe.config.guidance_scale if guidance is None else guidance
    generator = torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)
    pipe.sd.set_progress_bar_config(disable=True)
    with pipe._glyph_input(glyph, 1.0, image=crop, mask=mask):
        result = pipe.sd(
            prompt=prompt, num_inference_steps=steps, guidance_scale=guidance, height=crop.height, width=crop.width,
            generator=generator, output_type="pil",
        )  # fmt: skip
    painted = result.images[0].resize((window[2] - window[0], window[3] - window[1]), Image.Resampling.BICUBIC)
    return painted, steps * (2 if guidance > 1 else 1)


def _edit_window(pipe, image, window, box, text_box, full_mask, prompt, steps, guidance, seed):
    """Edits one window at the model's native size; returns the window's pixels at the image's scale."""
    import numpy as np
    import torch

    from textgen.core.glyph import GlyphOptions, render_glyph

    crop, layout, glyph, mask = _window_inputs(pipe, image, window, box, text_box, full_mask, prompt)
    native_w, native_h = crop.size
    left, top, right, bottom = window
    background = fill_background(crop, mask)  # the old text removed
    ink = render_glyph(layout, mask=True, options=GlyphOptions(**pipe.config.glyph_options))
    strokes = ink.filter(ImageFilter.MaxFilter(3))  # the new letters, grown a pixel for their edges

    sd = pipe.sd
    steps = steps or pipe.config.num_inference_steps
    guidance = pipe.config.guidance_scale if guidance is None else guidance
    generator = torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)
    device = sd.device
    dtype = sd.unet.dtype
    pixels = torch.from_numpy(np.asarray(background, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        encoded = sd.vae.encode(pixels.to(device=device, dtype=sd.vae.dtype)).latent_dist.mode()
    original = encoded * sd.vae.config.scaling_factor
    factor = pipe.vae_scale_factor
    m = torch.from_numpy(np.asarray(strokes, dtype=np.float32) / 255.0)[None, None]
    latent_mask = torch.nn.functional.max_pool2d(m, factor).to(device=device, dtype=original.dtype)  # any pixel
    latent_mask = torch.nn.functional.max_pool2d(latent_mask, 3, stride=1, padding=1)  # and the cells around
    noise = torch.randn(original.shape, generator=generator).to(device=device, dtype=original.dtype)
    scheduler = sd.scheduler
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    start = latent_mask * noise + (1 - latent_mask) * scheduler.add_noise(original, noise, timesteps[:1])

    def blend(_pipe, i, _t, kwargs):
        latents = kwargs["latents"]
        last = i + 1 >= len(timesteps)
        known = original if last else scheduler.add_noise(original, noise, timesteps[i + 1 : i + 2])
        return {"latents": latent_mask * latents + (1 - latent_mask) * known.to(latents.dtype)}

    control = {}
    if pipe.controlnet is not None:
        control = {"image": pipe.control_image(glyph), "controlnet_conditioning_scale": 1.0}
    sd.set_progress_bar_config(disable=True)
    if pipe.inpaints:  # an inpainting base repaints the strokes' region itself (its own blending)
        result = sd(
            prompt=prompt, image=background, mask_image=strokes, control_image=control.pop("image"),
            num_inference_steps=steps, guidance_scale=guidance, height=native_h, width=native_w,
            generator=generator, output_type="pil", strength=1.0, **control,
        )  # fmt: skip
        letters = strokes.filter(ImageFilter.GaussianBlur(0.6))
        composed = Image.composite(result.images[0], background, letters)
        painted = composed.resize((right - left, bottom - top), Image.Resampling.BICUBIC)
        return painted, steps * (2 if guidance > 1 else 1)
    with pipe._glyph_input(glyph, 1.0):
        result = sd(
            prompt=prompt, num_inference_steps=steps, guidance_scale=guidance, height=native_h, width=native_w,
            latents=start.to(dtype), generator=generator, output_type="pil", callback_on_step_end=blend,
            callback_on_step_end_tensor_inputs=["latents"], **control,
        )  # fmt: skip
    letters = strokes.filter(ImageFilter.GaussianBlur(0.6))  # soft edges where the letters meet the background
    composed = Image.composite(result.images[0], background, letters)
    painted = composed.resize((right - left, bottom - top), Image.Resampling.BICUBIC)
    return painted, steps * (2 if guidance > 1 else 1)


@dataclass
class RepairResult:
    """What :func:`repair` returns: the repaired image, each box's best reading and score, and the cost."""

    image: Image.Image
    reads: list[str]
    scores: list[float]
    rounds: int
    evaluations: int
    history: list[list[float]] = field(default_factory=list)


def repair(
    pipe: Any,
    image: Image.Image,
    layout: Layout,
    engine: Any,
    rounds: int = 1,
    prompt: str | None = None,
    seed: int = 0,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
) -> RepairResult:
    """Repaints every box whose text does not read back, up to ``rounds`` times, keeping each box's best version.

    Args:
        pipe: The pipeline that painted ``image``.
        image: The painted image.
        layout: What it should say.
        engine: The OCR engine judging each box.
        rounds: Repair rounds (each repaints the boxes still wrong).
        prompt: Prompt of the repainted regions (default: the layout's caption).
        seed: Seed of the first round (round ``r`` uses ``seed + 1000 r``).
        num_inference_steps: Denoising steps of a repair.
        guidance_scale: Guidance of a repair.
    """
    from textgen.core.metrics import ned
    from textgen.eval_read import read_boxes

    scaled = layout.resized(image.width, image.height)
    current = image.convert("RGB")
    reads = read_boxes(current, scaled, engine)
    scores = [ned(r, t) for r, t in zip(reads, scaled.texts)]
    history = [list(scores)]
    evaluations = 0
    done = 0
    for r in range(rounds):
        wrong = [i for i, s in enumerate(scores) if s < 1.0]
        if not wrong:
            break
        done += 1
        edit = Layout(scaled.width, scaled.height, tuple(scaled.boxes[i] for i in wrong), caption=scaled.caption)
        result = edit_image(
            pipe, current, edit, prompt=prompt or scaled.caption, seed=seed + 1000 * (r + 1),
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, ocr_engine=engine,
        )  # fmt: skip
        evaluations += result.evaluations
        # keep, box by box, whichever version reads better (edited regions of different boxes do not overlap)
        for k, i in enumerate(wrong):
            if result.scores[k] > scores[i]:
                region = box_mask(current.size, [result.layout.pixel_boxes()[k]], DEFAULT_MARGIN)
                current.paste(result.image, (0, 0), mask=region)
                scores[i], reads[i] = result.scores[k], result.reads[k]
        history.append(list(scores))
    return RepairResult(image=current, reads=reads, scores=scores, rounds=done, evaluations=evaluations,
                        history=history)  # fmt: skip
