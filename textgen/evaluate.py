"""Legibility evaluation the way the papers measure it: OCR the generated images, score them, write a report.

Given images and what they should say (a :class:`textgen.layout.Layout`, or just the texts), every image is read
twice with an OCR engine from :mod:`data_prep.ocr`:

1. **per box** -- each layout box is cropped (with a small margin) and read alone: AnyText's Sentence Accuracy
   and NED per text line (:func:`read_boxes`);
2. **whole image** -- all detections in reading order: GlyphControl's Acc, case-insensitive Acc and LD, and
   TextDiffuser's word precision / recall / F-measure and accuracy.

Optionally a CLIP score of image and prompt (:class:`ClipScorer`, a local CLIP model) and a colour check (is the
text, and is the background, nearest to the colour the prompt names?). The metric definitions live in
:mod:`textgen.metrics`; ``docs/evaluation.md`` compares them with the papers' scripts.

Entry points: :func:`evaluate_images` (images in memory), :func:`evaluate_folder` (a folder with a ``<name>.json``
beside each image or a ``manifest.jsonl``), :func:`evaluate_prompts` (runs a prompt set through a pipeline), and
``textgen evaluate`` on the command line. Each returns an :class:`EvalReport`, which
:meth:`EvalReport.save` writes as ``report.json`` and ``report.html`` (an image grid with per-image scores).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textgen.layout import Layout, LayoutError
from textgen.metrics import (
    BASIC_PALETTE,
    ColorMatch,
    LineScore,
    TargetScore,
    WordScore,
    color_match,
    estimate_colors,
    f_measure,
    glyphcontrol_scores,
    join_detections,
    line_scores,
    mean,
    ned,
    textdiffuser_scores,
)

__all__ = [
    "ClipScorer",
    "EvalOptions",
    "EvalReport",
    "EvalSample",
    "ImageResult",
    "PromptSpec",
    "crop_box",
    "evaluate_folder",
    "evaluate_images",
    "evaluate_prompts",
    "evaluate_samples",
    "load_folder",
    "load_prompts",
    "ned",
    "read_boxes",
]

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
        palette: Named colours for the colour check: ``"synth"`` (:data:`textgen.colors.PALETTE`, the colours
            ``textgen synth`` paints and names in its captions), ``"basic"`` (:data:`textgen.metrics.BASIC_PALETTE`)
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
            from textgen.colors import PALETTE

            return PALETTE
        raise ValueError(f"palette must be 'synth', 'basic' or a mapping name -> colour, got {self.palette!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not isinstance(self.palette, str):
            data["palette"] = {str(k): v if isinstance(v, str) else list(v) for k, v in self.palette.items()}
        return data


# -------------------------------------------------------------------------------------------------- reading
def _to_rgb(image: Image.Image) -> Image.Image:
    from data_prep.ocr import to_rgb  # the OCR stage's conversion: alpha on white, 16-bit scaled

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
            :func:`data_prep.ocr.get_engine`.
        options: Cropping options.

    Returns:
        The reading of each box, in layout order: the crop's detections in reading order joined by spaces
        (:func:`textgen.metrics.join_detections`); ``""`` where nothing was read.
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


# ------------------------------------------------------------------------------------------------- samples
@dataclass
class EvalSample:
    """One image to evaluate and what it should show.

    Args:
        name: Shown in the report (a file name, ``prompt0003_1``...).
        texts: The intended texts (the layout's, when a layout is given).
        layout: Where each text should be; without it, per-box metrics and the colour check are skipped.
        image: The image, or ``None`` to load ``path`` when evaluated.
        path: Image file (read when ``image`` is ``None``; shown in the report).
        prompt: The prompt (for the CLIP score and the report).
        text_color: Intended text colour for boxes whose layout names none (a palette name, CSS name or hex).
        background_color: Intended background colour, or several (any of them matches: striped backgrounds).
        glyph: The glyph image the generator was conditioned on, shown beside the image in the report.
    """

    name: str
    texts: list[str]
    layout: Layout | None = None
    image: Image.Image | None = None
    path: Path | None = None
    prompt: str | None = None
    text_color: str | None = None
    background_color: str | list[str] | None = None
    glyph: Image.Image | None = None

    def load_image(self) -> Image.Image:
        if self.image is not None:
            return self.image
        if self.path is None:
            raise ValueError(f"{self.name}: no image and no path")
        with Image.open(self.path) as im:
            im.load()
            return im.copy()


def _as_texts(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return list(value)
    raise ValueError(f"{where}: 'texts' must be a string or a list of strings, got {value!r}")


def sample_from_entry(entry: Mapping[str, Any], where: str, name: str, path: Path | None = None) -> EvalSample:
    """Builds a sample from a manifest line or a sidecar JSON.

    Accepted keys: ``texts`` (list or one string), ``layout`` (a textgen Layout dict), ``prompt`` or ``caption``,
    ``text_color``, ``background_color`` (string or list). A data-stage triple record (``data_prep.records``)
    works too: its ``layout``, ``caption`` and the synthetic generator's ``source.background.colors``.

    Raises:
        ValueError: naming ``where``: no intended text, texts that disagree with the layout, a malformed layout.
    """
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    layout = None
    if "boxes" in entry:  # a bare Layout JSON
        layout = Layout.from_dict(dict(entry), source=where)
        entry = {"prompt": entry.get("caption")}
    elif entry.get("layout") is not None:
        layout = Layout.from_dict(entry["layout"], source=f"{where}: layout")
    if layout is not None:
        try:
            layout.validate(check_fonts=False)
        except LayoutError as err:
            raise LayoutError(f"{where}: {err}") from err
    texts = _as_texts(entry["texts"], where) if entry.get("texts") is not None else None
    if (
        layout is not None
        and texts is not None
        and [" ".join(t.split()) for t in texts] != [" ".join(t.split()) for t in layout.texts]
    ):
        raise ValueError(f"{where}: 'texts' {texts} disagree with the layout's texts {layout.texts}")
    texts = layout.texts if layout is not None else texts
    if not texts or not any(t.strip() for t in texts):
        raise ValueError(
            f"{where}: no intended text: give 'texts' (a list of strings) or a 'layout' with boxes, so the image "
            "can be scored"
        )
    background = entry.get("background_color")
    source = entry.get("source")
    if background is None and isinstance(source, Mapping) and isinstance(source.get("background"), Mapping):
        background = source["background"].get("colors")  # data_prep.synth records
    if background is not None and not (
        isinstance(background, str) or (isinstance(background, list) and all(isinstance(c, str) for c in background))
    ):
        raise ValueError(f"{where}: 'background_color' must be a colour name or a list of them, got {background!r}")
    text_color = entry.get("text_color")
    if text_color is not None and not isinstance(text_color, str):
        raise ValueError(f"{where}: 'text_color' must be a colour name or hex, got {text_color!r}")
    prompt = entry.get("prompt") or entry.get("caption") or (layout.caption if layout is not None else None)
    return EvalSample(
        name=name,
        texts=texts,
        layout=layout,
        path=path,
        prompt=prompt,
        text_color=text_color,
        background_color=background or None,
    )


# ------------------------------------------------------------------------------------------------- results
@dataclass
class ImageResult:
    """Scores of one image (see :mod:`textgen.metrics` for every definition).

    Attributes:
        name: The sample's name.
        texts: The intended texts.
        lines: AnyText per-line scores (``None`` without a layout).
        detections: Whole-image OCR readings, in reading order.
        targets: GlyphControl scores, one per intended text.
        words: TextDiffuser word scores.
        clip_score: CLIP score with the prompt, when a scorer and a prompt were given.
        text_colors: Colour check of each box (``None`` where no colour was intended or measurable).
        background_color: Colour check of the background.
        seconds: Time spent on this image.
        error: Why the image could not be evaluated (then every score is empty).
        notes: Parts that were skipped and why (e.g. an intended colour the palette cannot name).
    """

    name: str
    texts: list[str]
    path: str | None = None
    prompt: str | None = None
    size: tuple[int, int] | None = None
    lines: list[LineScore] | None = None
    detections: list[str] = field(default_factory=list)
    targets: list[TargetScore] = field(default_factory=list)
    words: WordScore | None = None
    clip_score: float | None = None
    text_colors: list[ColorMatch | None] | None = None
    background_color: ColorMatch | None = None
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    thumbnail: Image.Image | None = field(default=None, repr=False)
    glyph_thumbnail: Image.Image | None = field(default=None, repr=False)

    def scores(self) -> dict[str, float | None]:
        """This image's headline numbers (means over its lines / texts)."""
        lines = self.lines or []
        return {
            "sentence_accuracy": mean([line.exact for line in lines]),
            "ned": mean([line.ned for line in lines]),
            "acc": mean([t.acc for t in self.targets]),
            "acc_case_insensitive": mean([t.acc_case_insensitive for t in self.targets]),
            "ld": mean([t.ld for t in self.targets]),
            "precision": self.words.precision if self.words else None,
            "recall": self.words.recall if self.words else None,
            "f_measure": self.words.f_measure if self.words else None,
            "accuracy": float(self.words.accuracy) if self.words else None,
            "clip_score": self.clip_score,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "prompt": self.prompt,
            "size": list(self.size) if self.size else None,
            "texts": self.texts,
            "error": self.error,
            "scores": self.scores(),
            "lines": [line.to_dict() for line in self.lines] if self.lines is not None else None,
            "ocr": {"detections": self.detections, "text": join_detections(self.detections)},
            "targets": [t.to_dict() for t in self.targets],
            "words": self.words.to_dict() if self.words else None,
            "text_colors": [c.to_dict() if c else None for c in self.text_colors] if self.text_colors else None,
            "background_color": self.background_color.to_dict() if self.background_color else None,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def aggregate(results: Sequence[ImageResult]) -> dict[str, Any]:
    """Pools per-image results the way each paper does.

    * AnyText: Sentence Accuracy and NED are means over all *lines* (boxes) of all images.
    * GlyphControl: Acc, case-insensitive Acc and LD are means over all intended texts (one per image in their
      benchmark); ``ld_detected`` averages LD only over images where OCR read something (their script's
      convention).
    * TextDiffuser: precision and recall are means over images; the F-measure is computed from those two means
      (not the mean of per-image F-measures); accuracy is the fraction of images whose words all read exactly.
    * Colour: the fraction of boxes (text) and images (background) whose measured colour is nearest the
      intended one, over those with an intended colour.
    """
    ok = [r for r in results if r.error is None]
    lines = [line for r in ok for line in (r.lines or [])]
    targets = [t for r in ok for t in r.targets]
    words = [r.words for r in ok if r.words is not None]
    precision = mean([w.precision for w in words])
    recall = mean([w.recall for w in words])
    clip = [r.clip_score for r in ok if r.clip_score is not None]
    text_colors = [c for r in ok for c in (r.text_colors or []) if c is not None]
    backgrounds = [r.background_color for r in ok if r.background_color is not None]
    return {
        "images": {"total": len(results), "evaluated": len(ok), "failed": len(results) - len(ok)},
        "anytext": {
            "sentence_accuracy": mean([line.exact for line in lines]),
            "ned": mean([line.ned for line in lines]),
            "lines": len(lines),
        },
        "glyphcontrol": {
            "acc": mean([t.acc for t in targets]),
            "acc_case_insensitive": mean([t.acc_case_insensitive for t in targets]),
            "ld": mean([t.ld for t in targets]),
            "ld_detected": mean([t.ld for t in targets if t.detected]),
            "texts": len(targets),
        },
        "textdiffuser": {
            "precision": precision,
            "recall": recall,
            "f_measure": f_measure(precision, recall) if words else None,
            "accuracy": mean([w.accuracy for w in words]),
            "images": len(words),
        },
        "clip_score": {"mean": mean(clip), "images": len(clip)},
        "color": {
            "text_accuracy": mean([c.match for c in text_colors]),
            "text_boxes": len(text_colors),
            "background_accuracy": mean([c.match for c in backgrounds]),
            "backgrounds": len(backgrounds),
        },
        "seconds_per_image": mean([r.seconds for r in ok]),
    }


@dataclass
class EvalReport:
    """Per-image results and their aggregates (:func:`aggregate`).

    Attributes:
        results: One :class:`ImageResult` per image, in input order.
        engine: Name of the OCR engine.
        options: The :class:`EvalOptions` used.
        meta: Anything else worth recording (model, steps, seeds...).
    """

    results: list[ImageResult]
    engine: str = "ocr"
    options: EvalOptions = field(default_factory=EvalOptions)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregates(self) -> dict[str, Any]:
        return aggregate(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "options": self.options.to_dict(),
            "meta": self.meta,
            "aggregates": self.aggregates,
            "images": [r.to_dict() for r in self.results],
        }

    def summary(self) -> str:
        """A short plain-text table of the aggregates."""
        agg = self.aggregates
        rows = [
            ("images evaluated", f"{agg['images']['evaluated']} / {agg['images']['total']}"),
            (
                "AnyText Sentence Acc",
                _fmt(agg["anytext"]["sentence_accuracy"]) + f"  ({agg['anytext']['lines']} lines)",
            ),
            ("AnyText NED", _fmt(agg["anytext"]["ned"])),
            ("GlyphControl Acc", _fmt(agg["glyphcontrol"]["acc"]) + f"  ({agg['glyphcontrol']['texts']} texts)"),
            ("GlyphControl Acc (case-insens.)", _fmt(agg["glyphcontrol"]["acc_case_insensitive"])),
            ("GlyphControl LD", _fmt(agg["glyphcontrol"]["ld"], 2)),
            (
                "TextDiffuser P / R / F",
                " / ".join(_fmt(agg["textdiffuser"][k]) for k in ("precision", "recall", "f_measure")),
            ),
            ("TextDiffuser accuracy", _fmt(agg["textdiffuser"]["accuracy"])),
        ]
        if agg["clip_score"]["images"]:
            rows.append(("CLIP score", _fmt(agg["clip_score"]["mean"])))
        if agg["color"]["text_boxes"]:
            rows.append(
                ("text colour match", _fmt(agg["color"]["text_accuracy"]) + f"  ({agg['color']['text_boxes']} boxes)")
            )
        if agg["color"]["backgrounds"]:
            rows.append(("background colour match", _fmt(agg["color"]["background_accuracy"])))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes ``report.json``, ``report.html`` and ``thumbs/`` (the images the page shows) into ``out_dir``.

        Returns:
            ``{"json": path, "html": path}``.
        """
        out = Path(out_dir)
        thumbs = out / "thumbs"
        thumbs.mkdir(parents=True, exist_ok=True)
        links: list[tuple[str | None, str | None]] = []
        for i, r in enumerate(self.results):
            image_link = glyph_link = None
            if r.thumbnail is not None:
                image_link = f"thumbs/{i:04d}.png"
                r.thumbnail.save(out / image_link)
            if r.glyph_thumbnail is not None:
                glyph_link = f"thumbs/{i:04d}_glyph.png"
                r.glyph_thumbnail.save(out / glyph_link)
            links.append((image_link, glyph_link))
        data = self.to_dict()
        for item, (image_link, glyph_link) in zip(data["images"], links):
            item["thumbnail"], item["glyph_thumbnail"] = image_link, glyph_link
        json_path, html_path = out / "report.json", out / "report.html"
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        html_path.write_text(render_html(data), encoding="utf-8")
        return {"json": json_path, "html": html_path}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------------------------------------- evaluation
def _thumbnail(image: Image.Image) -> Image.Image:
    thumb = _to_rgb(image).copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return thumb


def _check_colors(
    sample: EvalSample, image: Image.Image, palette: Mapping[str, Any]
) -> tuple[list[ColorMatch | None] | None, ColorMatch | None]:
    layout = sample.layout
    if layout is None:
        return None, None
    box_targets = [b.color or sample.text_color for b in layout.boxes]
    if not any(box_targets) and not sample.background_color:
        return None, None
    from textgen.glyph import render_glyph

    sized = layout.resized(image.width, image.height)
    mask = np.asarray(render_glyph(sized, mask=True))
    estimated_text, estimated_bg = estimate_colors(np.asarray(image), mask, sized.pixel_boxes())
    text_colors = [
        color_match(est, target, palette) if target and est is not None else None
        for est, target in zip(estimated_text, box_targets)
    ]
    background = None
    if sample.background_color and estimated_bg is not None:
        background = color_match(estimated_bg, sample.background_color, palette)
    return text_colors, background


def score_sample(
    sample: EvalSample,
    engine: Any,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    image: Image.Image | None = None,
) -> ImageResult:
    """Scores one sample (OCR per box, OCR of the whole image, CLIP, colours). Errors propagate."""
    opts = options or EvalOptions()
    start = time.perf_counter()
    image = _to_rgb(image if image is not None else sample.load_image())
    result = ImageResult(
        name=sample.name,
        texts=list(sample.texts),
        path=str(sample.path) if sample.path is not None else None,
        prompt=sample.prompt,
        size=image.size,
    )
    # 1. Per box: AnyText's line metrics from crops
    if sample.layout is not None and sample.layout.boxes:
        result.lines = line_scores(read_boxes(image, sample.layout, engine, opts), sample.layout.texts)
    # 2. Whole image: GlyphControl's and TextDiffuser's metrics
    result.detections = [d.text for d in engine.read(image)]
    result.targets = glyphcontrol_scores(result.detections, sample.texts)
    result.words = textdiffuser_scores(result.detections, sample.texts)
    # 3. CLIP score with the prompt
    if clip is not None and sample.prompt:
        result.clip_score = float(clip([image], [sample.prompt])[0])
    # 4. Colours named by the prompt (secondary: a colour name the palette cannot resolve is noted, not fatal)
    try:
        result.text_colors, result.background_color = _check_colors(sample, image, opts.palette_colors())
    except ValueError as err:
        result.notes.append(f"colour check skipped: {err}")
    result.thumbnail = _thumbnail(image)
    result.glyph_thumbnail = _thumbnail(sample.glyph) if sample.glyph is not None else None
    result.seconds = time.perf_counter() - start
    return result


def evaluate_samples(
    samples: Iterable[EvalSample],
    engine: Any,
    *,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    progress: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> EvalReport:
    """Scores samples one by one.

    An image that cannot be read (missing, corrupt) or that fails in OCR does not stop the run: its result
    carries the reason in ``error`` and it is left out of the aggregates (counted as ``failed``).

    Args:
        samples: The samples (an iterator is consumed lazily, so a large folder never sits in memory).
        engine: OCR engine (``read(image) -> [OCRBox]``).
        options: :class:`EvalOptions`.
        clip: Optional CLIP scorer (``clip(images, texts) -> scores``, e.g. :class:`ClipScorer`).
        progress: Show a progress bar.
        meta: Recorded in the report.

    Returns:
        The :class:`EvalReport`.
    """
    opts = options or EvalOptions()
    opts.palette_colors()  # a bad palette fails before any OCR time is spent
    iterator: Iterable[EvalSample] = samples
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(samples, desc="evaluate", unit="img")
    results = []
    for sample in iterator:
        try:
            results.append(score_sample(sample, engine, opts, clip))
        except Exception as err:  # recorded, not raised: one bad image must not end a long run
            results.append(
                ImageResult(
                    name=sample.name,
                    texts=list(sample.texts),
                    path=str(sample.path) if sample.path is not None else None,
                    prompt=sample.prompt,
                    error=f"{type(err).__name__}: {err}",
                )
            )
    return EvalReport(results=results, engine=_engine_name(engine), options=opts, meta=dict(meta or {}))


def _engine_name(engine: Any) -> str:
    return str(getattr(engine, "name", type(engine).__name__))


def evaluate_images(
    images: Sequence[Image.Image],
    layouts_or_texts: Sequence[Layout | Sequence[str] | str],
    engine: Any,
    *,
    names: Sequence[str] | None = None,
    prompts: Sequence[str | None] | None = None,
    text_colors: Sequence[str | None] | None = None,
    background_colors: Sequence[str | list[str] | None] | None = None,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
) -> EvalReport:
    """Evaluates images in memory against their layouts (or bare texts).

    Args:
        images: The generated images.
        layouts_or_texts: Per image, a :class:`Layout` (all metrics) or the intended texts (a list, or one
            string; whole-image metrics only).
        engine: OCR engine, e.g. ``data_prep.ocr.get_engine("rapidocr")``.
        names: Names for the report (default ``0000``, ``0001``...).
        prompts: Prompts (for the CLIP score and the report).
        text_colors: Intended text colour per image (for boxes whose layout names none).
        background_colors: Intended background colour(s) per image.
        options: :class:`EvalOptions`.
        clip: Optional CLIP scorer.

    Raises:
        ValueError: lists of different lengths, or an image without any intended text.
    """
    n = len(images)
    for label, values in (
        ("layouts_or_texts", layouts_or_texts),
        ("names", names),
        ("prompts", prompts),
        ("text_colors", text_colors),
        ("background_colors", background_colors),
    ):
        if values is not None and len(values) != n:
            raise ValueError(f"evaluate_images: {len(values)} {label} for {n} images")
    samples = []
    for i, (image, target) in enumerate(zip(images, layouts_or_texts)):
        name = names[i] if names is not None else f"{i:04d}"
        entry: dict[str, Any] = {
            "prompt": prompts[i] if prompts is not None else None,
            "text_color": text_colors[i] if text_colors is not None else None,
            "background_color": background_colors[i] if background_colors is not None else None,
        }
        if isinstance(target, Layout):
            entry["layout"] = target.to_dict()
            entry["prompt"] = entry["prompt"] or target.caption
        else:
            entry["texts"] = target
        sample = sample_from_entry(entry, where=f"image {i} ({name})", name=name)
        sample.image = image
        samples.append(sample)
    return evaluate_samples(samples, engine, options=options, clip=clip)


# -------------------------------------------------------------------------------------------------- folders
def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def load_folder(folder: str | Path, allow_outside: bool = False) -> list[EvalSample]:
    """Lists the samples of an image folder, checking every intended text before any image is read.

    Two ways to say what each image should show:

    * ``manifest.jsonl`` in the folder: one JSON object per line, ``{"image": "a.png", "texts": [...],
      "layout": {...}, "prompt": "...", "text_color": "...", "background_color": "..."}`` (``texts`` or
      ``layout`` required; paths relative to the folder and inside it, unless ``allow_outside``). Only the images
      it lists are evaluated.
    * otherwise a sidecar ``<name>.json`` beside each ``<name>.png|jpg|jpeg|webp``: a textgen Layout JSON, a
      data-stage triple record, or an object with the manifest's keys.

    Raises:
        FileNotFoundError: the folder, a listed image, or an image's sidecar does not exist.
        ValueError: the folder holds no images, or an entry is malformed (the message names file and line).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of images to evaluate")
    manifest = root / MANIFEST_NAME
    samples: list[EvalSample] = []
    if manifest.is_file():
        for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{lineno}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
                raise ValueError(f"{where}: expected an object with 'image' (a file name relative to {root})")
            path = root / entry["image"]
            if not allow_outside and not _inside(path, root):
                raise ValueError(
                    f"{where}: image {entry['image']!r} lies outside {root} (manifest paths are relative to their "
                    "folder; pass allow_outside=True to follow them anyway)"
                )
            if not path.is_file():
                raise FileNotFoundError(f"{where}: image {entry['image']!r} not found in {root}")
            samples.append(sample_from_entry(entry, where=where, name=entry["image"], path=path))
        if not samples:
            raise ValueError(f"{manifest}: lists no images")
        return samples
    images = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) and no {MANIFEST_NAME}")
    for path in images:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"{path}: no intended text: expected a sidecar {sidecar.name} (a textgen layout JSON) or a "
                f"{MANIFEST_NAME} in {root}"
            )
        try:
            entry = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{sidecar}: invalid JSON ({err.msg} at line {err.lineno})") from err
        samples.append(sample_from_entry(entry, where=str(sidecar), name=path.name, path=path))
    return samples


def evaluate_folder(
    folder: str | Path,
    engine: Any,
    *,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    progress: bool = False,
) -> EvalReport:
    """Evaluates a folder of images (see :func:`load_folder` for how it says what each image should show)."""
    samples = load_folder(folder)
    return evaluate_samples(
        samples, engine, options=options, clip=clip, progress=progress, meta={"folder": str(Path(folder))}
    )


# -------------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class PromptSpec:
    """One prompt of a prompt set.

    Args:
        prompt: The prompt.
        texts: Words to paint (default: the pipeline's reading of the prompt, e.g. its quoted spans).
        layout: A layout to paint instead of planning one.
        seed: Seed of this prompt's images (default: the run's seed plus the prompt's index).
        text_color: Intended text colour (for the colour check).
        background_color: Intended background colour(s).
        name: Name stem of the written images.
    """

    prompt: str
    texts: tuple[str, ...] | None = None
    layout: Layout | None = None
    seed: int | None = None
    text_color: str | None = None
    background_color: str | tuple[str, ...] | None = None
    name: str | None = None


def load_prompts(path: str | Path) -> list[PromptSpec]:
    """Reads a prompt set.

    ``.jsonl``: one object per line with ``prompt`` and optional ``texts``, ``layout``, ``seed``, ``text_color``,
    ``background_color``, ``name``. Any other file: one prompt per line; blank lines and lines starting with
    ``#`` are skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file and line of a malformed entry, or a file with no prompts.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such prompt file")
    specs: list[PromptSpec] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}:{lineno}"
        if not line.strip() or (path.suffix != ".jsonl" and line.lstrip().startswith("#")):
            continue
        if path.suffix != ".jsonl":
            specs.append(PromptSpec(prompt=line.strip()))
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
        if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str) or not entry["prompt"].strip():
            raise ValueError(f"{where}: expected an object with a non-empty 'prompt' string")
        texts = tuple(_as_texts(entry["texts"], where)) if entry.get("texts") is not None else None
        layout = Layout.from_dict(entry["layout"], source=f"{where}: layout") if entry.get("layout") else None
        if texts is not None and layout is not None:
            raise ValueError(f"{where}: give 'texts' or 'layout', not both (a layout already says which texts)")
        seed = entry.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"{where}: 'seed' must be an integer, got {seed!r}")
        background = entry.get("background_color")
        if isinstance(background, list):
            background = tuple(background)
        specs.append(
            PromptSpec(
                prompt=entry["prompt"],
                texts=texts,
                layout=layout,
                seed=seed,
                text_color=entry.get("text_color"),
                background_color=background,
                name=entry.get("name"),
            )
        )
    if not specs:
        raise ValueError(f"{path}: no prompts")
    return specs


def evaluate_prompts(
    pipeline: Callable[..., Any],
    prompts: str | Path | Sequence[PromptSpec | str],
    engine: Any,
    *,
    out_dir: str | Path,
    num_images_per_prompt: int = 1,
    seed: int = 0,
    num_inference_steps: int | None = None,
    best_of: int = 1,
    pipeline_kwargs: Mapping[str, Any] | None = None,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    progress: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> EvalReport:
    """Runs a prompt set through a pipeline, saves the images, evaluates them and writes the report.

    The pipeline is any callable ``pipeline(prompt, num_images_per_prompt=..., seed=..., [texts=..., layout=...,
    num_inference_steps=..., best_of=...]) -> out`` whose ``out`` has ``.images`` (PIL images), ``.layout`` (the
    :class:`Layout` painted) and ``.glyph`` (the glyph image), as :class:`textgen.pipeline.PosterPipeline` does.
    Optional arguments are passed only when set, so simple callables work.

    ``out_dir`` receives ``images/`` (every image, its glyph and a ``manifest.jsonl`` that :func:`evaluate_folder`
    reads again, e.g. with another OCR engine) and the report (:meth:`EvalReport.save`).

    Args:
        pipeline: The generator.
        prompts: A prompt file (:func:`load_prompts`) or a list of :class:`PromptSpec` / prompt strings.
        engine: OCR engine.
        out_dir: Output folder.
        num_images_per_prompt: Images kept per prompt.
        seed: Base seed: prompt ``i`` uses ``seed + i`` unless its spec sets one.
        num_inference_steps: Denoising steps (the pipeline's default when ``None``).
        best_of: OCR-verified best-of-N inside the pipeline (only the ``num_images_per_prompt`` best are kept).
        pipeline_kwargs: More keyword arguments for every call (``guidance_scale``,
            ``controlnet_conditioning_scale=0`` for a no-glyph ablation...).
        options: :class:`EvalOptions`.
        clip: Optional CLIP scorer.
        progress: Show a progress bar over prompts.
        meta: Recorded in the report (model name...).

    Returns:
        The :class:`EvalReport` (also written to ``out_dir``).

    Raises:
        ValueError: bad counts, or a pipeline output without ``images``/``layout``.
    """
    if num_images_per_prompt < 1 or best_of < 1:
        raise ValueError(f"num_images_per_prompt and best_of must be >= 1, got {num_images_per_prompt}, {best_of}")
    specs = (
        load_prompts(prompts)
        if isinstance(prompts, (str, Path))
        else [p if isinstance(p, PromptSpec) else PromptSpec(prompt=str(p)) for p in prompts]
    )
    if not specs:
        raise ValueError("evaluate_prompts: no prompts")
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    opts = options or EvalOptions()
    opts.palette_colors()

    def generate() -> Iterator[EvalSample]:
        manifest = (image_dir / MANIFEST_NAME).open("w", encoding="utf-8")
        try:
            for i, spec in enumerate(specs):
                stem = spec.name or f"{i:04d}"
                call: dict[str, Any] = {
                    "num_images_per_prompt": num_images_per_prompt,
                    "seed": spec.seed if spec.seed is not None else seed + i,
                }
                if spec.texts is not None:
                    call["texts"] = list(spec.texts)
                if spec.layout is not None:
                    call["layout"] = spec.layout
                if num_inference_steps is not None:
                    call["num_inference_steps"] = num_inference_steps
                if best_of > 1:
                    call["best_of"] = best_of
                result = pipeline(spec.prompt, **{**dict(pipeline_kwargs or {}), **call})
                images = list(getattr(result, "images", None) or [])[:num_images_per_prompt]
                layout = getattr(result, "layout", None)
                if not images or not isinstance(layout, Layout):
                    raise ValueError(
                        f"prompt {i} ({spec.prompt!r}): the pipeline returned no images or no layout (expected an "
                        "object with .images, .layout and .glyph)"
                    )
                glyph = getattr(result, "glyph", None)
                glyph_name = None
                if glyph is not None:
                    glyph_name = f"{stem}_glyph.png"
                    glyph.save(image_dir / glyph_name)
                for k, image in enumerate(images):
                    name = f"{stem}_{k}.png"
                    image.save(image_dir / name)
                    entry = {
                        "image": name,
                        "prompt": spec.prompt,
                        "seed": call["seed"],
                        "index": k,
                        "layout": layout.to_dict(),
                        "glyph": glyph_name,
                        "text_color": spec.text_color,
                        "background_color": list(spec.background_color)
                        if isinstance(spec.background_color, tuple)
                        else spec.background_color,
                    }
                    manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    manifest.flush()
                    sample = sample_from_entry(entry, where=f"prompt {i} image {k}", name=name, path=image_dir / name)
                    sample.image, sample.glyph = image, glyph
                    yield sample
        finally:
            manifest.close()

    if progress:
        print(f"generating and evaluating {len(specs)} prompts x {num_images_per_prompt} images")
    run_meta = {
        "prompts": len(specs),
        "num_images_per_prompt": num_images_per_prompt,
        "seed": seed,
        "num_inference_steps": num_inference_steps,
        "best_of": best_of,
        "pipeline_kwargs": {
            k: v if isinstance(v, (int, float, str, bool)) else repr(v) for k, v in (pipeline_kwargs or {}).items()
        },
        **dict(meta or {}),
    }
    report = evaluate_samples(generate(), engine, options=opts, clip=clip, progress=progress, meta=run_meta)
    report.save(out)
    return report


# ----------------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #ccc;border-radius:6px;padding:8px;width:540px}
.card img{width:256px;height:auto;image-rendering:pixelated;border:1px solid #eee}.ok{color:#0a7a2f}.bad{color:#c0142b}
.err{background:#fff0f0}.sw{display:inline-block;width:12px;height:12px;border:1px solid #888;vertical-align:middle}
code{background:#f4f4f4;padding:0 3px}.small{font-size:12px;color:#555}
"""


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _mark(ok: bool) -> str:
    return '<span class="ok">&#10003;</span>' if ok else '<span class="bad">&#10007;</span>'


def _swatch(hex_color: str) -> str:
    return f'<span class="sw" style="background:{html.escape(hex_color)}"></span>'


def render_html(data: Mapping[str, Any]) -> str:
    """The report page: aggregates, then a card per image (thumbnail, glyph, intended vs read, scores)."""
    agg = data["aggregates"]
    e = html.escape
    rows = [
        (
            "AnyText Sentence Accuracy",
            agg["anytext"]["sentence_accuracy"],
            f"{agg['anytext']['lines']} lines; box crop read exactly",
        ),
        ("AnyText NED", agg["anytext"]["ned"], "1 - edit distance / max length, per line"),
        (
            "GlyphControl Acc",
            agg["glyphcontrol"]["acc"],
            f"{agg['glyphcontrol']['texts']} texts; found among whole-image readings",
        ),
        ("GlyphControl Acc (case-insensitive)", agg["glyphcontrol"]["acc_case_insensitive"], ""),
        (
            "GlyphControl LD",
            agg["glyphcontrol"]["ld"],
            f"Levenshtein distance; {_fmt(agg['glyphcontrol']['ld_detected'], 2)} over images with any reading",
        ),
        ("TextDiffuser precision", agg["textdiffuser"]["precision"], "lower-cased words, mean over images"),
        ("TextDiffuser recall", agg["textdiffuser"]["recall"], ""),
        ("TextDiffuser F-measure", agg["textdiffuser"]["f_measure"], "from the mean precision and recall"),
        ("TextDiffuser accuracy", agg["textdiffuser"]["accuracy"], "all words read, nothing extra"),
        ("CLIP score", agg["clip_score"]["mean"], f"{agg['clip_score']['images']} images"),
        ("text colour match", agg["color"]["text_accuracy"], f"{agg['color']['text_boxes']} boxes"),
        ("background colour match", agg["color"]["background_accuracy"], f"{agg['color']['backgrounds']} images"),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>textgen evaluation</title>",
        f"<style>{_CSS}</style></head><body><h1>textgen evaluation</h1>",
        f"<p>OCR engine <code>{e(str(data['engine']))}</code>; {agg['images']['evaluated']} of "
        f"{agg['images']['total']} images evaluated ({agg['images']['failed']} failed); "
        f"{_fmt(agg['seconds_per_image'], 2)} s per image.</p>",
        "<table><tr><th>metric</th><th>value</th><th>note</th></tr>",
        *(f"<tr><td>{e(k)}</td><td><b>{_cell(v)}</b></td><td class='small'>{e(n)}</td></tr>" for k, v, n in rows),
        "</table><h2>Images</h2><div class='grid'>",
    ]
    for item in data["images"]:
        parts.append(f"<div class='card{' err' if item['error'] else ''}'>")
        parts.append(f"<div><b>{e(item['name'])}</b></div>")
        if item.get("prompt"):
            parts.append(f"<div class='small'>{e(item['prompt'])}</div>")
        for key in ("thumbnail", "glyph_thumbnail"):
            if item.get(key):
                parts.append(f"<img src='{e(item[key])}' alt='{e(item['name'])}' loading='lazy'> ")
        if item["error"]:
            parts.append(f"<p class='bad'>not evaluated: {e(item['error'])}</p></div>")
            continue
        for note in item["notes"]:
            parts.append(f"<div class='small bad'>{e(note)}</div>")
        parts.append("<table><tr><th>intended</th><th>read in box</th><th></th><th>NED</th></tr>")
        if item["lines"] is not None:
            for line in item["lines"]:
                parts.append(
                    f"<tr><td><code>{e(line['target'])}</code></td><td><code>{e(line['read'])}</code></td>"
                    f"<td>{_mark(line['exact'])}</td><td>{line['ned']:.3f}</td></tr>"
                )
        else:
            parts.append("<tr><td colspan='4' class='small'>no layout: per-box metrics skipped</td></tr>")
        parts.append("</table>")
        parts.append(f"<div>whole image: <code>{e(item['ocr']['text'])}</code></div>")
        s = item["scores"]
        parts.append(
            f"<div class='small'>Acc {_cell(s['acc'])} &middot; Acc-ci {_cell(s['acc_case_insensitive'])} &middot; "
            f"LD {_cell(s['ld'])} &middot; P {_cell(s['precision'])} R {_cell(s['recall'])} F {_cell(s['f_measure'])} "
            f"&middot; word acc {_cell(s['accuracy'])}"
            + (f" &middot; CLIP {_cell(s['clip_score'])}" if s["clip_score"] is not None else "")
            + "</div>"
        )
        colours = [("text", c) for c in (item["text_colors"] or []) if c] + (
            [("background", item["background_color"])] if item["background_color"] else []
        )
        for label, c in colours:
            parts.append(
                f"<div class='small'>{label}: {_swatch(c['estimated'])} reads as {e(c['nearest'])}, intended "
                f"{e(' / '.join(c['intended']))} {_mark(c['match'])}</div>"
            )
        parts.append("</div>")
    parts.append("</div></body></html>\n")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from textgen.cli import float_in, int_in

    parser.add_argument(
        "images", nargs="?", help="folder of images with <name>.json layouts beside them or a manifest.jsonl"
    )
    parser.add_argument("-o", "--output", required=True, help="report folder (report.json, report.html, thumbs/)")
    parser.add_argument("--engine", default="default", choices=["default", "rapidocr", "easyocr"], help="OCR engine")
    parser.add_argument("--languages", nargs="+", default=["en"], help="OCR languages (en, zh)")
    parser.add_argument("--threads", type=int_in(1, 256), default=1, help="OCR threads (1 is robust when shared)")
    parser.add_argument("--clip-model", help="local CLIP model folder: adds a CLIP score of image and prompt")
    parser.add_argument(
        "--palette", choices=["synth", "basic"], default="synth", help="named colours for the colour check"
    )
    gen = parser.add_argument_group("generate from prompts (instead of a folder)")
    gen.add_argument("--prompts", help="prompt file: .txt (one per line) or .jsonl ({'prompt', 'texts', ...})")
    gen.add_argument("--model", help="preset, saved PosterPipeline folder or SD base (default: the shipped model)")
    gen.add_argument("--controlnet", help="ControlNet folder or hub id, for an SD base")
    gen.add_argument("--n", "--num-images", dest="n", type=int_in(1, 64), default=1, help="images per prompt")
    gen.add_argument("--steps", type=int_in(1, 1000), help="denoising steps, 1-1000 (default: the model's)")
    gen.add_argument("--best-of", type=int_in(1, 64), default=1, help="OCR-verified best-of-N inside the pipeline")
    gen.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="base seed; prompt i uses seed + i")
    gen.add_argument("--guidance", type=float_in(0, 100), help="classifier-free guidance, 0-100 (default: model)")
    gen.add_argument(
        "--control-scale", type=float_in(0, 10), help="glyph conditioning scale, 0-10 (0 blanks the glyph: ablation)"
    )
    gen.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    gen.add_argument("--local-files-only", action="store_true", help="never touch the network")


def _load_pipeline(args: argparse.Namespace, engine: Any = None) -> Any:
    import torch

    from textgen.generate import resolve_model
    from textgen.pipeline import PosterPipeline

    model = resolve_model(args.model)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return PosterPipeline.from_pretrained(
        model,
        args.controlnet,
        local_files_only=args.local_files_only or args.model is None,
        device=device,
        ocr_engine=engine,  # best-of-N ranks with the evaluator's own engine: one OCR model in memory
    )


def run(args: argparse.Namespace) -> int:
    if bool(args.images) == bool(args.prompts):
        raise ValueError("give either an IMAGES folder or --prompts FILE (with --model), not both or neither")
    if args.images and not Path(args.images).is_dir():
        raise FileNotFoundError(f"{args.images}: no such folder of images to evaluate")
    options = EvalOptions(palette=args.palette)
    # Check the cheap inputs before loading OCR, CLIP or diffusion models.
    prompts = load_prompts(args.prompts) if args.prompts else None
    samples = load_folder(args.images) if args.images else None
    from data_prep.ocr import get_engine

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    engine = get_engine(args.engine, languages=args.languages, threads=args.threads)
    clip = ClipScorer(args.clip_model) if args.clip_model else None
    if prompts is not None:
        pipeline = _load_pipeline(args, engine)
        kwargs: dict[str, Any] = {"progress": False}
        if args.guidance is not None:
            kwargs["guidance_scale"] = args.guidance
        if args.control_scale is not None:
            kwargs["controlnet_conditioning_scale"] = args.control_scale
        report = evaluate_prompts(
            pipeline,
            prompts,
            engine,
            out_dir=args.output,
            num_images_per_prompt=args.n,
            seed=args.seed,
            num_inference_steps=args.steps,
            best_of=args.best_of,
            pipeline_kwargs=kwargs,
            options=options,
            clip=clip,
            progress=True,
            meta={"model": str(args.model or "shipped"), "prompts_file": str(args.prompts)},
        )
    else:
        report = evaluate_samples(
            samples, engine, options=options, clip=clip, progress=True, meta={"folder": str(args.images)}
        )
        report.save(args.output)
    print(report.summary())
    print(f"wrote {Path(args.output) / 'report.json'} and {Path(args.output) / 'report.html'}")
    agg = report.aggregates["images"]
    if agg["evaluated"] == 0:
        first = next((r.error for r in report.results if r.error), "")
        raise RuntimeError(f"no image could be evaluated ({agg['failed']} failed; first: {first})")
    return 0
