"""The layout vocabulary every textgen package speaks: text boxes on a canvas.

A :class:`Layout` is a canvas size in pixels, a list of :class:`TextBox` and an optional caption. Box
coordinates are normalised to ``[0, 1]`` of the canvas so that one layout serves every resolution;
``to_pixels`` / ``from_pixels`` convert. The data stage writes layouts, the planners produce them, the glyph
renderer and the generation pipeline consume them.

Two serialisations:

* JSON (``to_json`` / ``from_json``), the on-disk format of shards and of the CLI;
* TextDiffuser-2's planner text (``to_td2``): one line per box, ``keyword l,t,r,b`` with integers on a 0-128
  grid; :func:`layout_model.td2.parse_answer` reads it back (leniently, as models write it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from textgen.core.script import text_problem

TD2_GRID = 128  # TextDiffuser-2 quantises coordinates of a 512x512 canvas to a 128 grid
MAX_SIDE = 16384  # largest canvas side in pixels
MAX_PIXELS = 64_000_000  # largest canvas area (an 8000x8000 RGB image is ~190 MB)

Box = tuple[float, float, float, float]


class LayoutError(ValueError):
    """A layout (or one of its boxes) is malformed; the message names the box and the field."""


def canvas_problem(width: int, height: int) -> str | None:
    """Why a ``width`` x ``height`` canvas is refused (over :data:`MAX_SIDE` a side or :data:`MAX_PIXELS`)."""
    if width > MAX_SIDE or height > MAX_SIDE:
        return f"canvas {width}x{height} is larger than {MAX_SIDE} pixels a side"
    if width * height > MAX_PIXELS:
        return f"canvas {width}x{height} has {width * height:,} pixels, more than the {MAX_PIXELS:,} allowed"
    return None


@dataclass(frozen=True)
class TextBox:
    """One piece of text to paint.

    Args:
        text: The string to render, exactly as it should read.
        box: ``(x0, y0, x1, y1)`` normalised to ``[0, 1]`` of the canvas; the ink stays inside it.
        angle: Rotation of the text in degrees, counter-clockwise, about the box centre. The rotated text
            is fitted inside ``box``.
        font: A font name known to :mod:`textgen.core.fonts` or a path to a TTF/OTF/TTC file; ``None`` picks the
            default font for the text's script.
        color: Intended text colour (``"#rrggbb"`` or a CSS name). The glyph image is always black on
            white; the colour is for captions and generation.
        language: Optional BCP-47-like tag (``"en"``, ``"zh"``, ``"ja"``); selects the CJK face.
    """

    text: str
    box: Box
    angle: float = 0.0
    font: str | None = None
    color: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise lists (from JSON) to tuples so boxes hash and compare.
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "angle", float(self.angle))

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Returns the box in integer pixel coordinates of a ``width`` x ``height`` canvas."""
        x0, y0, x1, y1 = self.box
        return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["box"] = list(self.box)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "box") -> TextBox:
        """Builds a box from its JSON dict; ``where`` prefixes error messages (e.g. ``"layout.json: box 2"``)."""
        if not isinstance(data, dict):
            raise LayoutError(f"{where}: expected an object with 'text' and 'box', got {type(data).__name__}")
        unknown = set(data) - {"text", "box", "angle", "font", "color", "language"}
        if unknown:
            raise LayoutError(f"{where}: unknown field(s) {sorted(unknown)}")
        for key in ("text", "box"):
            if key not in data:
                raise LayoutError(f"{where}: missing field '{key}'")
        if not isinstance(data["text"], str):
            raise LayoutError(f"{where}: 'text' must be a string, got {type(data['text']).__name__}")
        box = data["box"]
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise LayoutError(f"{where}: 'box' must be [x0, y0, x1, y1], got {box!r}")
        try:
            coords = tuple(float(v) for v in box)
            angle = float(data.get("angle") or 0.0)
        except (TypeError, ValueError) as err:
            raise LayoutError(f"{where}: 'box' and 'angle' must be numbers, got box={box!r}") from err
        return cls(
            text=data["text"],
            box=coords,
            angle=angle,
            font=data.get("font"),
            color=data.get("color"),
            language=data.get("language"),
        )


@dataclass(frozen=True)
class Layout:
    """Text boxes on a canvas.

    Args:
        width: Canvas width in pixels.
        height: Canvas height in pixels.
        boxes: The text boxes, in reading order.
        caption: Optional description of the whole image (the prompt it belongs to).
    """

    width: int = 512
    height: int = 512
    boxes: tuple[TextBox, ...] = field(default_factory=tuple)
    caption: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(self.boxes))

    @property
    def texts(self) -> list[str]:
        return [b.text for b in self.boxes]

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def resized(self, width: int, height: int) -> Layout:
        """The same layout on a canvas of another size (boxes are normalised, so they stay put)."""
        return replace(self, width=int(width), height=int(height))

    # ----------------------------------------------------------------------------------------- validation
    def validate(self, check_fonts: bool = True) -> Layout:
        """Checks the layout and returns it unchanged.

        Args:
            check_fonts: Also check that every named font resolves (see :func:`textgen.core.fonts.resolve_font`).

        Returns:
            ``self``, so calls chain: ``Layout.from_json(s).validate()``.

        Raises:
            LayoutError: naming the box and the field: non-positive canvas, NaN or infinite coordinates,
                ``x1 <= x0`` / ``y1 <= y0``, a box outside ``[0, 1]``, empty text, non-finite angle, an
                unknown font or an invalid colour.
        """
        if not (isinstance(self.width, int) and isinstance(self.height, int)) or self.width <= 0 or self.height <= 0:
            raise LayoutError(f"layout: canvas size must be positive integers, got {self.width}x{self.height}")
        problem = canvas_problem(self.width, self.height)
        if problem:
            raise LayoutError(f"layout: {problem}")
        for i, b in enumerate(self.boxes):
            where = f"box {i} ({b.text!r})"
            if any(math.isnan(v) or math.isinf(v) for v in b.box):
                raise LayoutError(f"{where}: 'box' {list(b.box)} contains NaN or infinity")
            x0, y0, x1, y1 = b.box
            if x1 <= x0:
                raise LayoutError(f"{where}: 'box' {list(b.box)} has x1 <= x0")
            if y1 <= y0:
                raise LayoutError(f"{where}: 'box' {list(b.box)} has y1 <= y0")
            if x0 < 0 or y0 < 0 or x1 > 1 or y1 > 1:
                raise LayoutError(f"{where}: 'box' {list(b.box)} lies outside the canvas (expected values in [0, 1])")
            problem = text_problem(b.text)
            if problem:
                raise LayoutError(f"box {i} ({b.text[:40]!r}): 'text' {problem}")
            if math.isnan(b.angle) or math.isinf(b.angle):
                raise LayoutError(f"{where}: 'angle' must be finite, got {b.angle}")
            if b.color is not None:
                from PIL import ImageColor

                try:
                    ImageColor.getrgb(b.color)
                except ValueError as err:
                    raise LayoutError(
                        f"{where}: 'color' {b.color!r} is not a colour (expected #rrggbb or a name)"
                    ) from err
            if check_fonts and b.font is not None:
                from textgen.core.fonts import FontError, resolve_font

                try:
                    resolve_font(b.font)
                except FontError as err:
                    raise LayoutError(f"{where}: 'font' {err}") from err
        return self

    # ----------------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "caption": self.caption,
            "boxes": [b.to_dict() for b in self.boxes],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "layout") -> Layout:
        """Builds a layout from its JSON dict; ``source`` names the input in error messages."""
        if not isinstance(data, dict):
            raise LayoutError(f"{source}: expected a JSON object, got {type(data).__name__}")
        boxes_data = data.get("boxes", [])
        if not isinstance(boxes_data, list):
            raise LayoutError(f"{source}: 'boxes' must be a list, got {type(boxes_data).__name__}")
        try:
            width = int(data.get("width", 512))
            height = int(data.get("height", 512))
        except (TypeError, ValueError) as err:
            raise LayoutError(f"{source}: 'width'/'height' must be integers") from err
        boxes = tuple(TextBox.from_dict(b, where=f"{source}: box {i}") for i, b in enumerate(boxes_data))
        return cls(width=width, height=height, boxes=boxes, caption=data.get("caption"))

    @classmethod
    def from_json(cls, text: str, source: str = "layout") -> Layout:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise LayoutError(f"{source}: invalid JSON ({err.msg} at line {err.lineno} column {err.colno})") from err
        return cls.from_dict(data, source=source)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Layout:
        """Reads a layout JSON file. Raises ``FileNotFoundError`` or :class:`LayoutError` naming the file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such layout file")
        return cls.from_json(path.read_text(encoding="utf-8"), source=str(path))

    # --------------------------------------------------------------------------------------------- pixels
    def pixel_boxes(self) -> list[tuple[int, int, int, int]]:
        return [b.to_pixels(self.width, self.height) for b in self.boxes]

    @classmethod
    def from_pixels(
        cls,
        items: Iterable[tuple[str, Sequence[float]]],
        width: int,
        height: int,
        caption: str | None = None,
        **box_kwargs: Any,
    ) -> Layout:
        """Builds a layout from ``(text, (x0, y0, x1, y1))`` pairs in pixels of a ``width`` x ``height`` image."""
        boxes = tuple(
            TextBox(text=text, box=(x0 / width, y0 / height, x1 / width, y1 / height), **box_kwargs)
            for text, (x0, y0, x1, y1) in items
        )
        return cls(width=width, height=height, boxes=boxes, caption=caption)

    # ------------------------------------------------------------------------------ TextDiffuser-2 format
    def to_td2(self) -> str:
        """Serialises to TextDiffuser-2's planner format: ``keyword l,t,r,b`` per line, 0-128 grid."""
        lines = []
        for b in self.boxes:
            coords = [min(TD2_GRID, max(0, round(v * TD2_GRID))) for v in b.box]
            lines.append(f"{b.text} {coords[0]},{coords[1]},{coords[2]},{coords[3]}")
        return "\n".join(lines)
