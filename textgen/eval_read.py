"""Reading generated images for evaluation: options, per-box crops read by an OCR engine, and the CLIP score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textgen.core.colors import BASIC_PALETTE
from textgen.core.layout import Layout
from textgen.core.metrics import join_detections

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MANIFEST_NAME = "manifest.jsonl"
THUMBNAIL_SIDE = 256  # longest side of the report's thumbnails
CROP_CANVASES = ("image", "square", "none")


# ------------------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class EvalOptions:
    """How images are read and colours judged.

    Args:
        crop_padding: Margin added on every side of a box crop, as a fraction of the box height (the text size):
            detectors need some background around the ink, and generated text often spills slightly.
        min_padding: Least margin in pixels.
        crop_canvas: What the OCR engine is shown for a box. ``"image"`` (default): the padded crop pasted back at
            its place on a canvas of the whole image's size, filled with the crop's median border colour -- only the
            box is visible, at exactly the scale the detector sees for the whole image (PP-OCR rescales every input
            so its short side is 736 px; a small crop would be blown up several times, and in tests a few crisp
            glyph crops then came back misread or flipped by the direction classifier). ``"square"``: the crop
            centred on a square canvas of that colour. ``"none"``: the bare crop.
        palette: Named colours for the colour check: ``"synth"`` (:data:`textgen.core.colors.PALETTE`, the colours
            ``textgen synth`` paints and names in its captions), ``"basic"``
            (:data:`textgen.core.colors.BASIC_PALETTE`)
            or a mapping name -> colour.
    """

    crop_padding: float = 0.15
    min_padding: int = 4
    crop_canvas: str = "image"
    palette: str | Mapping[str, Any] = "synth"

    def __post_init__(self) -> None:
        if self.crop_canvas not in CROP_CANVASES:
            raise ValueError(f"crop_canvas must be one of {CROP_CANVASES}, got {self.crop_canvas!r}")
        if self.crop_padding < 0 or self.min_padding < 0:
            raise ValueError(f"crop_padding and min_padding must be >= 0, got {self.crop_padding}, {self.min_padding}")

    def palette_colors(self) -> Mapping[str, Any]:
        if not isinstance(self.palette, str):
            return self.palette
        if self.palette == "basic":
            return BASIC_PALETTE
        if self.palette == "synth":
            from textgen.core.colors import PALETTE

            return PALETTE
        raise ValueError(f"palette must be 'synth', 'basic' or a mapping name -> colour, got {self.palette!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not isinstance(self.palette, str):
            data["palette"] = {str(k): v if isinstance(v, str) else list(v) for k, v in self.palette.items()}
        return data


# -------------------------------------------------------------------------------------------------- reading
def _to_rgb(image: Image.Image) -> Image.Image:
    from textgen.core.ocr import to_rgb  # the OCR stage's conversion: alpha on white, 16-bit scaled

    return to_rgb(image)


def crop_box(image: Image.Image, box: Sequence[float], options: EvalOptions | None = None) -> Image.Image:
    """Isolates one text box of an image for OCR.

    Args:
        image: The image.
        box: ``(x0, y0, x1, y1)`` in pixels of ``image``. Rotated text is read from its axis-aligned box (the
            layout's boxes already enclose the rotated ink; the detector finds the slanted line inside).
        options: Margin and canvas (:class:`EvalOptions`).

    Returns:
        The box padded by ``max(min_padding, crop_padding * box height)`` and clipped to the image: alone on a
        canvas of the image's size (``crop_canvas="image"``) or a square canvas (``"square"``), both filled with
        the crop's median border colour, or bare (``"none"``).
    """
    opts = options or EvalOptions()
    rgb = _to_rgb(image)
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = max(float(opts.min_padding), opts.crop_padding * max(1.0, y1 - y0))
    left = int(max(0, min(rgb.width - 1, round(x0 - pad))))
    top = int(max(0, min(rgb.height - 1, round(y0 - pad))))
    right = int(min(rgb.width, max(left + 1, round(x1 + pad))))
    bottom = int(min(rgb.height, max(top + 1, round(y1 + pad))))
    crop = rgb.crop((left, top, right, bottom))
    if opts.crop_canvas == "none":
        return crop
    arr = np.asarray(crop)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    fill = tuple(int(v) for v in np.median(border, axis=0).round())
    if opts.crop_canvas == "image":
        canvas = Image.new("RGB", rgb.size, fill)
        canvas.paste(crop, (left, top))
        return canvas
    side = max(crop.width, crop.height)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    return canvas


def _read_many(engine: Any, images: Sequence[Image.Image]) -> list[list[Any]]:
    batch = getattr(engine, "read_batch", None)
    return list(batch(images)) if callable(batch) else [engine.read(image) for image in images]


def read_boxes(image: Image.Image, layout: Layout, engine: Any, options: EvalOptions | None = None) -> list[str]:
    """Reads every box of a layout from its own crop (AnyText's per-line protocol).

    Args:
        image: The generated image (any size: the layout's normalised boxes are scaled to it).
        layout: What was meant to be painted where.
        engine: An OCR engine with ``read(image) -> [OCRBox]`` (and optionally ``read_batch``), e.g.
            :func:`textgen.core.ocr.get_engine`.
        options: Cropping options.

    Returns:
        The reading of each box, in layout order: the crop's detections in reading order joined by spaces
        (:func:`textgen.core.metrics.join_detections`); ``""`` where nothing was read.
    """
    if not layout.boxes:
        return []
    boxes = layout.resized(image.width, image.height).pixel_boxes()
    crops = [crop_box(image, box, options) for box in boxes]
    return [join_detections([d.text for d in dets]) for dets in _read_many(engine, crops)]


# ---------------------------------------------------------------------------------------------------- CLIP
class ClipScorer:
    """CLIP score of image-text pairs: ``weight * max(0, cos(image embedding, text embedding))``.

    With ``weight=1`` and ``prefix="A photo depicts"`` this is TextDiffuser's ``clipscore.py`` setting; CLIPScore
    (Hessel et al., 2021) uses ``weight=2.5`` with that prefix. The model loads once, from a local folder only.

    Args:
        model_path: A folder with a transformers ``CLIPModel``, its tokenizer and image processor (e.g. a saved
            ``openai/clip-vit-base-patch32``).
        device: Torch device.
        weight: Scale of the clipped cosine.
        prefix: Text put before every prompt.
        batch_size: Pairs per forward pass.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        weight: float = 1.0,
        prefix: str = "",
        batch_size: int = 16,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such CLIP model folder (expected a transformers CLIPModel folder)")
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        self.model = CLIPModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.image_processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        self.device = device
        self.weight = float(weight)
        self.prefix = prefix.strip()
        self.batch_size = int(batch_size)
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.name = str(path)

    def __call__(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        """Scores ``images[i]`` against ``texts[i]``."""
        import torch

        if len(images) != len(texts):
            raise ValueError(f"ClipScorer: {len(images)} images for {len(texts)} texts")
        scores: list[float] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [_to_rgb(im) for im in images[start : start + self.batch_size]]
            prompts = [f"{self.prefix} {t}".strip() for t in texts[start : start + self.batch_size]]
            pixels = self.image_processor(images=chunk, return_tensors="pt")["pixel_values"].to(self.device)
            tokens = self.tokenizer(
                prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(self.device)
            with torch.no_grad():
                out = self.model(
                    pixel_values=pixels, input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask")
                )
            cosine = (out.image_embeds * out.text_embeds).sum(dim=-1)  # both are L2-normalised by CLIPModel
            scores.extend(self.weight * max(0.0, float(c)) for c in cosine)
        return scores
