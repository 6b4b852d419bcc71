"""What every OCR engine shares: the engine interface, language names, image conversion and box utilities."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from textgen.core.script import has_cjk
from textgen.core.shards import OCRBox

_ZH_ALIASES = ("zh", "ch", "ch_sim", "zh-cn", "zh_cn", "zh-hans", "chinese")


class OCRError(RuntimeError):
    """An OCR engine cannot be built (missing weights, unsupported language) or failed on an image."""


def normalize_languages(languages: str | Iterable[str]) -> tuple[str, ...]:
    """Turns a language list into our canonical codes (``"en"``, ``"zh"``, or an engine's own code).

    Args:
        languages: One code or several; Chinese aliases (``"ch"``, ``"ch_sim"``, ``"zh-cn"``...) become ``"zh"``.

    Returns:
        The distinct codes, in the order given.

    Raises:
        ValueError: the list is empty.
    """
    if isinstance(languages, str):
        languages = [languages]
    codes: dict[str, None] = {}
    for lang in languages:
        code = str(lang).strip().lower()
        codes.setdefault("zh" if code in _ZH_ALIASES else code, None)
    if not codes:
        raise ValueError("languages: expected at least one language code such as 'en' or 'zh'")
    return tuple(codes)


def _has_cjk(text: str) -> bool:
    return has_cjk(text)


def to_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """Converts any PIL mode (L, LA, P, RGBA, CMYK, I;16, F) or an ``HxW[xC]`` uint8 array to 8-bit RGB.

    Transparent pixels are composited on white (how a viewer shows them); 16-bit and float images are scaled
    from their own range to 0-255 instead of being clipped.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.round().astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _box_from_polygon(polygon: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in polygon]
    ys = [float(p[1]) for p in polygon]
    return (min(xs), min(ys), max(xs), max(ys))


def sort_reading_order(boxes: Sequence[OCRBox]) -> list[OCRBox]:
    """Sorts detections top to bottom in lines, left to right within a line.

    Two boxes share a line when their vertical centres are closer than half the smaller box height (text on
    one baseline with slightly different ink heights, e.g. "Sale" and "50%").
    """
    remaining = sorted(boxes, key=lambda b: ((b.box[1] + b.box[3]) / 2, b.box[0]))
    lines: list[list[OCRBox]] = []
    for b in remaining:
        cy, h = (b.box[1] + b.box[3]) / 2, b.box[3] - b.box[1]
        if lines:
            last = lines[-1]
            ref_cy = sum((o.box[1] + o.box[3]) / 2 for o in last) / len(last)
            ref_h = min(o.box[3] - o.box[1] for o in last)
            if abs(cy - ref_cy) < 0.5 * min(h, ref_h):
                last.append(b)
                continue
        lines.append([b])
    return [b for line in lines for b in sorted(line, key=lambda o: o.box[0])]


def _char_weight(char: str) -> float:
    # Rough advance widths relative to an average letter: enough to place word boundaries inside a line.
    if char.isspace():
        return 0.55
    if char in "iIl1.,:;'!|ftj()[]":
        return 0.5
    if char in "mwMW@%":
        return 1.4
    return 1.8 if _has_cjk(char) else 1.0


def split_words(box: OCRBox) -> list[OCRBox]:
    """Splits a line detection into one box per space-separated word, by estimated character widths.

    For engines that report lines only (EasyOCR), so that their output can be scored against word-level
    ground truth; each word's quad is cut from the line's quad along its top and bottom edges.

    Args:
        box: A detection whose polygon has 4 points (top-left, top-right, bottom-right, bottom-left).

    Returns:
        The word boxes (the box itself when it holds one word or is not a quad).
    """
    words = box.text.split()
    if len(words) <= 1 or len(box.polygon) != 4:
        return [box]
    weights = [_char_weight(c) for c in box.text]
    total = sum(weights)
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = box.polygon
    out = []
    pos = 0
    for word in words:
        start = box.text.index(word, pos)
        end = start + len(word)
        t0, t1 = sum(weights[:start]) / total, sum(weights[:end]) / total
        top0 = (tlx + (trx - tlx) * t0, tly + (try_ - tly) * t0)
        top1 = (tlx + (trx - tlx) * t1, tly + (try_ - tly) * t1)
        bot1 = (blx + (brx - blx) * t1, bly + (bry - bly) * t1)
        bot0 = (blx + (brx - blx) * t0, bly + (bry - bly) * t0)
        polygon = (top0, top1, bot1, bot0)
        out.append(OCRBox(word, polygon, _box_from_polygon(polygon), box.confidence, box.language))
        pos = end
    return out


class OCREngine(abc.ABC):
    """Base class: subclasses set ``name``/``languages`` and implement ``_read(rgb_image)``."""

    name: str = "ocr"
    languages: tuple[str, ...] = ("en",)

    @abc.abstractmethod
    def _read(self, image: Image.Image) -> list[OCRBox]:
        """Reads one 8-bit RGB image; the detections may come in any order."""

    def read(self, image: Image.Image | np.ndarray) -> list[OCRBox]:
        """Reads one image.

        Args:
            image: A PIL image (any mode) or an ``HxW[xC]`` uint8 array in RGB order.

        Returns:
            The detections in reading order, coordinates in pixels of ``image``.
        """
        rgb = to_rgb(image)
        if rgb.width < 2 or rgb.height < 2:
            return []
        return sort_reading_order(self._read(rgb))

    def read_batch(self, images: Sequence[Image.Image | np.ndarray]) -> list[list[OCRBox]]:
        """Reads several images (one at a time: both engines batch text lines, not images)."""
        return [self.read(image) for image in images]

    def _language_of(self, text: str) -> str:
        if "zh" in self.languages and _has_cjk(text):
            return "zh"
        return "en" if "en" in self.languages or "zh" in self.languages else self.languages[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(languages={self.languages!r})"
