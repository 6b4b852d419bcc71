"""Filters: which OCR boxes a triple keeps, and which samples are rejected, each counted by reason.

Two levels, both configured by :class:`FilterOptions`:

* **box filters** drop single detections and count them in the shard stats under ``dropped_boxes``:
  ``box_garbage`` (no letter or digit, or one character repeated), ``box_low_confidence``, ``box_too_small``
  (text height relative to the image), ``box_language`` (script not in the allowed languages);
* **sample filters** reject a whole sample and count it under ``rejected`` (so that inputs = written +
  rejected): ``no_text`` (OCR found nothing), ``no_kept_text`` (every box was dropped), ``too_many_boxes``,
  ``text_area_too_small``. The minimum image side is checked earlier, by the decode stage
  (``image_too_small``), before any OCR time is spent.

The defaults and the sources they come from are in ``docs/data_prep.md``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textgen.core.script import text_language as script_language  # one script rule for all
from textgen.core.shards import OCRBox


@dataclass(frozen=True)
class FilterOptions:
    """What a triple must satisfy.

    Args:
        min_confidence: Boxes recognised with a lower confidence are dropped. 0.5: GlyphControl's LAION-Glyph
            keeps boxes with confidence > 0.5 (GlyphDraw2 uses 0.6).
        min_text_height: Boxes whose text height (the shorter side of the quad) is below this fraction of the
            image's shorter side are dropped. 0.015 is 8 px at a 512 training canvas: one latent pixel of
            Stable Diffusion's 8x VAE; smaller text cannot be learned at that resolution.
        min_text_area: Samples whose kept boxes cover less than this fraction of the image are rejected
            (0 disables it).
        max_boxes: Samples with more kept boxes are rejected. 20: GlyphDraw2 keeps images with 1-20 boxes.
        drop_garbage: Drop boxes with no letter or digit, or one character repeated (``"|||"``, ``"ooo"``).
        min_repeat: A string of one repeated character counts as garbage from this length on.
        languages: Keep only boxes whose script matches one of these tags (``"en"`` for Latin script, ``"zh"``,
            ``"ja"``, ``"ko"``...); ``None`` keeps every script.
        keep_no_text: Keep samples without any (kept) text instead of rejecting them (``no_text``): useful
            when the same set also trains the image model without glyph conditioning.
    """

    min_confidence: float = 0.5
    min_text_height: float = 0.015
    min_text_area: float = 0.0
    max_boxes: int = 20
    drop_garbage: bool = True
    min_repeat: int = 3
    languages: tuple[str, ...] | None = None
    keep_no_text: bool = False

    def validate(self) -> FilterOptions:
        """Checks the options and returns them; raises ``ValueError`` naming the field."""
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if not 0.0 <= self.min_text_height < 1.0:
            raise ValueError(f"min_text_height must be in [0, 1), got {self.min_text_height}")
        if not 0.0 <= self.min_text_area < 1.0:
            raise ValueError(f"min_text_area must be in [0, 1), got {self.min_text_area}")
        if self.max_boxes < 1:
            raise ValueError(f"max_boxes must be >= 1, got {self.max_boxes}")
        if self.min_repeat < 2:
            raise ValueError(f"min_repeat must be >= 2, got {self.min_repeat}")
        if self.languages is not None and not self.languages:
            raise ValueError("languages must be None (keep all) or a non-empty list of tags")
        return self


def garbage_reason(text: str, min_repeat: int = 3) -> str | None:
    """Why a recognised string is not worth rendering, or ``None`` when it is.

    Returns:
        ``"empty"``, ``"no letter or digit"`` (``"---"``, ``"..."``, ``"→"``) or ``"one repeated character"``
        (``"lll"``, ``"0000"``) from ``min_repeat`` characters on.
    """
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return "empty"
    if not any(c.isalnum() for c in chars):
        return "no letter or digit"
    if len(chars) >= min_repeat and len(set(chars)) == 1:
        return "one repeated character"
    return None


def text_height(box: OCRBox) -> float:
    """Height of the text in pixels: the shorter mean side of a 4-point quad (so rotation does not inflate it),
    else the shorter side of the axis-aligned box."""
    if len(box.polygon) == 4:
        p = box.polygon

        def dist(a: Sequence[float], b: Sequence[float]) -> float:
            return math.hypot(a[0] - b[0], a[1] - b[1])

        along = (dist(p[0], p[1]) + dist(p[3], p[2])) / 2
        across = (dist(p[1], p[2]) + dist(p[0], p[3])) / 2
        return min(along, across)
    x0, y0, x1, y1 = box.box
    return min(x1 - x0, y1 - y0)


@dataclass
class FilterResult:
    """The boxes a sample keeps, the boxes dropped by reason, and the sample's rejection reason (or ``None``)."""

    boxes: list[OCRBox]
    dropped: dict[str, int]
    reject: str | None = None
    detail: str = ""


def filter_boxes(boxes: Sequence[OCRBox], width: int, height: int, options: FilterOptions) -> FilterResult:
    """Applies the box filters, then the sample filters, to the OCR result of one ``width`` x ``height`` image.

    Args:
        boxes: The detections, in pixels.
        width: Image width.
        height: Image height.
        options: The filters.

    Returns:
        The kept boxes (in the given order), the dropped counts by reason and the rejection, if any.
    """
    kept: list[OCRBox] = []
    dropped: dict[str, int] = {}
    min_height = options.min_text_height * min(width, height)
    allowed = set(options.languages) if options.languages else None

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    for box in boxes:
        if not box.text.strip() or (options.drop_garbage and garbage_reason(box.text, options.min_repeat)):
            drop("box_garbage")
        elif box.confidence < options.min_confidence:
            drop("box_low_confidence")
        elif text_height(box) < min_height:
            drop("box_too_small")
        elif allowed is not None and script_language(box.text, box.language) not in allowed:
            drop("box_language")
        else:
            kept.append(box)

    result = FilterResult(kept, dropped)
    if not kept:
        if not options.keep_no_text:
            result.reject = "no_text" if not boxes else "no_kept_text"
            result.detail = "OCR found no text" if not boxes else f"all {len(boxes)} boxes dropped: {dropped}"
        return result
    if len(kept) > options.max_boxes:
        result.reject, result.detail = "too_many_boxes", f"{len(kept)} boxes > max_boxes {options.max_boxes}"
        return result
    if options.min_text_area > 0:
        area = sum(max(0.0, b.box[2] - b.box[0]) * max(0.0, b.box[3] - b.box[1]) for b in kept) / (width * height)
        if area < options.min_text_area:
            result.reject = "text_area_too_small"
            result.detail = f"text covers {area:.4f} of the image < min_text_area {options.min_text_area}"
    return result


class FilterStage:
    """Batch stage: ``ocr`` (all detections) -> ``ocr`` (kept boxes), ``dropped`` (counts), ``reject``.

    Args:
        options: The filters.
    """

    def __init__(self, options: FilterOptions | None = None) -> None:
        self.options = (options or FilterOptions()).validate()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {k: list(v) for k, v in batch.items()}
        for i in range(len(out["key"])):
            if out["reject"][i]:
                continue
            t0 = time.perf_counter()
            boxes = [OCRBox.from_dict(d) for d in json.loads(out["ocr"][i])]
            result = filter_boxes(boxes, int(out["width"][i]), int(out["height"][i]), self.options)
            out["ocr"][i] = json.dumps([b.to_dict() for b in result.boxes], ensure_ascii=False)
            out["dropped"][i] = json.dumps(result.dropped)
            if result.reject:
                out["reject"][i], out["detail"][i] = result.reject, result.detail
                out["image"][i] = b""
            seconds = json.loads(out["seconds"][i])
            seconds["filter"] = round(time.perf_counter() - t0, 6)
            out["seconds"][i] = json.dumps(seconds)
        return out
