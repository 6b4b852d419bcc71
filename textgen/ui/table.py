"""The layout editor's table: one row per text box, coordinates in pixels of the canvas.

A :class:`textgen.core.layout.Layout` keeps boxes normalised to ``[0, 1]``; a person editing a layout thinks in pixels.
These functions convert both ways and check every cell, with messages that name the row (1-based, as the table
shows it) and the column, so the page can say exactly what to fix. No Gradio here: the app wires these to widgets,
the tests call them directly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textgen.core.layout import Layout, LayoutError, TextBox

COLUMNS: tuple[str, ...] = ("text", "x0", "y0", "x1", "y1", "angle", "font", "color")
DATATYPES: tuple[str, ...] = ("str", "number", "number", "number", "number", "number", "str", "str")
NUMERIC = ("x0", "y0", "x1", "y1", "angle")
MAX_CANVAS = 4096  # pixels per side; larger canvases make the preview slow without helping the design


class TableError(LayoutError):
    """A cell of the layout table is wrong; the message names the row and the column."""


@dataclass(frozen=True)
class CanvasSize:
    """The editing canvas in pixels (the table's coordinates are pixels of this canvas)."""

    width: int = 512
    height: int = 512

    @classmethod
    def parse(cls, width: Any, height: Any) -> CanvasSize:
        """Checks the canvas size fields of the page.

        Raises:
            TableError: a side that is not a whole number in ``[16, MAX_CANVAS]``.
        """
        sides = []
        for name, value in (("width", width), ("height", height)):
            number = _number(value)
            if number is None or not float(number).is_integer() or not 16 <= number <= MAX_CANVAS:
                expected = f"a whole number of pixels in [16, {MAX_CANVAS}]"
                raise TableError(f"canvas {name}: expected {expected}, got {value!r}")
            sides.append(int(number))
        return cls(*sides)


def _number(value: Any) -> float | None:
    """A finite float from a cell (numbers, numeric strings), or ``None`` for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _pixel(value: float) -> int | float:
    """Whole pixels print as integers in the table; fractional ones keep one decimal."""
    rounded = round(value, 1)
    return int(rounded) if float(rounded).is_integer() else rounded


def layout_to_rows(layout: Layout, canvas: CanvasSize | None = None) -> list[list[Any]]:
    """The table rows of a layout: ``[text, x0, y0, x1, y1, angle, font, color]`` in pixels of ``canvas``.

    Args:
        layout: The layout to show.
        canvas: Pixels the coordinates refer to (default: the layout's own canvas).
    """
    canvas = canvas or CanvasSize(layout.width, layout.height)
    rows = []
    for box in layout.boxes:
        x0, y0, x1, y1 = box.box
        rows.append(
            [
                box.text,
                _pixel(x0 * canvas.width),
                _pixel(y0 * canvas.height),
                _pixel(x1 * canvas.width),
                _pixel(y1 * canvas.height),
                _pixel(box.angle),
                box.font or "",
                box.color or "",
            ]
        )
    return rows


def normalise_rows(rows: Any) -> list[list[Any]]:
    """Rows as a list of lists, whatever the widget sent (a list, a pandas DataFrame, ``{"data": ...}``).

    Rows that are blank in every cell (a row added and never filled) are dropped.
    """
    if rows is None:
        return []
    if hasattr(rows, "values") and hasattr(rows, "columns"):  # pandas DataFrame, without importing pandas
        rows = rows.values.tolist()
    elif isinstance(rows, dict):
        rows = rows.get("data") or []
    out = []
    for row in rows:
        cells = list(row) + [None] * (len(COLUMNS) - len(row))
        if not all(_blank(cell) for cell in cells):
            out.append(cells[: len(COLUMNS)])
    return out


def rows_to_layout(rows: Any, canvas: CanvasSize, caption: str | None = None, check_fonts: bool = True) -> Layout:
    """Builds and validates a layout from table rows.

    Args:
        rows: Table rows (see :func:`normalise_rows` for the accepted shapes); blank rows are ignored.
        canvas: The canvas the pixel coordinates refer to; the layout gets this size.
        caption: Caption of the layout (the prompt).
        check_fonts: Check that every named font resolves.

    Returns:
        The layout, boxes normalised to ``[0, 1]``.

    Raises:
        TableError: naming the row (1-based) and the column: empty text, a coordinate that is not a number,
            ``x1 <= x0`` or ``y1 <= y0``, a box outside the canvas, an unknown font, an invalid colour.
    """
    boxes = []
    for i, row in enumerate(normalise_rows(rows), start=1):
        cells = dict(zip(COLUMNS, row))
        text = "" if _blank(cells["text"]) else str(cells["text"])
        where = f"row {i}" + (f" ({text!r})" if text.strip() else "")
        if not text.strip():
            raise TableError(f"{where}, text: is empty (type the words to paint, or delete the row)")
        values: dict[str, float] = {}
        for name in NUMERIC:
            cell = cells[name]
            if name == "angle" and _blank(cell):
                values[name] = 0.0
                continue
            number = _number(cell)
            if number is None:
                raise TableError(f"{where}, {name}: expected a number of pixels, got {cell!r}")
            values[name] = number
        x0, y0, x1, y1 = values["x0"], values["y0"], values["x1"], values["y1"]
        if x1 <= x0:
            raise TableError(f"{where}, x1: must be greater than x0 (got x0={_pixel(x0)}, x1={_pixel(x1)})")
        if y1 <= y0:
            raise TableError(f"{where}, y1: must be greater than y0 (got y0={_pixel(y0)}, y1={_pixel(y1)})")
        for name, value, limit in (("x0", x0, canvas.width), ("y0", y0, canvas.height)):
            if value < 0:
                raise TableError(f"{where}, {name}: {_pixel(value)} lies outside the canvas (expected 0 to {limit})")
        for name, value, limit in (("x1", x1, canvas.width), ("y1", y1, canvas.height)):
            if value > limit:
                raise TableError(f"{where}, {name}: {_pixel(value)} lies outside the canvas (expected 0 to {limit})")
        font = None if _blank(cells["font"]) else str(cells["font"]).strip()
        color = None if _blank(cells["color"]) else str(cells["color"]).strip()
        box = TextBox(
            text=text,
            box=(x0 / canvas.width, y0 / canvas.height, x1 / canvas.width, y1 / canvas.height),
            angle=values["angle"],
            font=font,
            color=color,
        )
        try:
            Layout(canvas.width, canvas.height, (box,)).validate(check_fonts=check_fonts)
        except LayoutError as err:
            # The layout's message names box 0 of a one-box layout; say which column instead.
            column = "font" if "'font'" in str(err) else "color" if "'color'" in str(err) else "text"
            detail = str(err).split(": ", 1)[-1].removeprefix(f"'{column}' ")
            raise TableError(f"{where}, {column}: {detail}") from err
        if check_fonts:
            _check_drawable(box, where)
        boxes.append(box)
    return Layout(canvas.width, canvas.height, tuple(boxes), caption=caption or None)


def _check_drawable(box: TextBox, where: str) -> None:
    """Fails the way the renderer would on a character no font can draw, but naming the row."""
    from textgen.core.fonts import MissingGlyphError, select_font

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # falling back to another font for some characters is fine here
        try:
            select_font(box.text, box.font, box.language)
        except MissingGlyphError as err:
            raise TableError(f"{where}, text: {err}") from err


def new_row(rows: Any, canvas: CanvasSize, text: str = "TEXT") -> list[list[Any]]:
    """The rows plus one new box: centred, half the canvas wide, a sixth of it tall."""
    rows = normalise_rows(rows)
    w, h = canvas.width, canvas.height
    rows.append([text, _pixel(w * 0.25), _pixel(h * 5 / 12), _pixel(w * 0.75), _pixel(h * 7 / 12), 0, "", ""])
    return rows


def delete_row(rows: Any, index: int | None) -> list[list[Any]]:
    """The rows without row ``index`` (0-based); the last row when ``index`` is ``None``.

    Raises:
        TableError: there is no such row.
    """
    rows = normalise_rows(rows)
    if not rows:
        raise TableError("the table has no rows to delete")
    if index is None:
        index = len(rows) - 1
    if not 0 <= index < len(rows):
        raise TableError(f"row {index + 1}: no such row (the table has {len(rows)})")
    return rows[:index] + rows[index + 1 :]


def move_row(rows: Any, index: int, box: Sequence[float], canvas: CanvasSize) -> list[list[Any]]:
    """The rows with row ``index``'s box set to ``box`` (pixels; from dragging on the canvas), kept on the canvas.

    Raises:
        TableError: no such row, or a box that is not four numbers.
    """
    rows = normalise_rows(rows)
    if not 0 <= index < len(rows):
        raise TableError(f"row {index + 1}: no such row (the table has {len(rows)})")
    numbers = [_number(v) for v in box] if isinstance(box, (list, tuple)) and len(box) == 4 else [None]
    if any(v is None for v in numbers):
        raise TableError(f"row {index + 1}: a dragged box must be four numbers [x0, y0, x1, y1], got {box!r}")
    x0, y0, x1, y1 = numbers
    x0, x1 = sorted((min(max(x0, 0), canvas.width), min(max(x1, 0), canvas.width)))
    y0, y1 = sorted((min(max(y0, 0), canvas.height), min(max(y1, 0), canvas.height)))
    row = list(rows[index])
    row[1:5] = [_pixel(round(v)) for v in (x0, y0, x1, y1)]
    rows[index] = row
    return rows
