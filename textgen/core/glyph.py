"""Glyph rendering: a layout becomes black text on white (GlyphControl's convention), or a white-on-black mask.

Each box's text is drawn at the largest font size whose real ink extent fits the box: the size is estimated
from the text's extent at a reference size, then settled by a binary search on the rendered bounding box.
When the box is tall for its text, the text is wrapped onto the number of lines that gives the largest size.
Rotated boxes are fitted after rotation, so ink never leaves its box. Same layout, same bytes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

from textgen.core.fonts import FontSpec, get_font, select_font
from textgen.core.layout import Layout, TextBox
from textgen.core.script import line_units, needs_shaping, split_balanced

_REF_SIZE = 64  # font size at which line widths are measured for the size estimate and line breaking
_MAX_LINES = 6


@dataclass(frozen=True)
class GlyphOptions:
    """How boxes are filled.

    Args:
        line_spacing: Gap between wrapped lines as a fraction of the font size.
        margin: Pixels kept free inside each box edge (anti-aliasing never bleeds out of the box).
        max_lines: Most lines a box's text is wrapped onto.
        wrap: Allow wrapping at all; ``False`` keeps every text on one line (explicit ``\\n`` still breaks).
        on_missing: ``"error"`` or ``"warn"`` for characters no font can draw (see
            :func:`textgen.core.fonts.select_font`).
        min_size: Smallest font size in pixels; a box too small even for it is still drawn at this size,
            clipped to the box.
    """

    line_spacing: float = 0.15
    margin: int = 1
    max_lines: int = _MAX_LINES
    wrap: bool = True
    on_missing: str = "error"
    min_size: int = 4


@dataclass(frozen=True)
class FittedText:
    """The result of fitting one box: the font and size chosen and the lines drawn."""

    font: FontSpec
    size: int
    lines: tuple[str, ...]


def _pixel_box(box: TextBox, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box.to_pixels(width, height)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)  # a sliver of a box still gets one pixel


def _rotated_extent(w: float, h: float, angle: float) -> tuple[float, float]:
    c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    return w * c + h * s, w * s + h * c


@dataclass(frozen=True)
class _Placed:
    """Lines placed around the origin: per line its offset, and the union of their ink boxes."""

    offsets: tuple[tuple[float, float], ...]
    bbox: tuple[float, float, float, float]

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]


@functools.lru_cache(maxsize=8192)
def _place(lines: tuple[str, ...], spec: FontSpec, size: int, spacing: float) -> _Placed:
    """Centres each line on x = 0 and stacks them at a pitch of ``size * (1 + spacing)``; measures real ink."""
    font = get_font(spec, size, needs_shaping("".join(lines)))
    pitch = size * (1 + spacing)
    offsets = []
    ux0 = uy0 = math.inf
    ux1 = uy1 = -math.inf
    for i, line in enumerate(lines):
        x0, y0, x1, y1 = font.getbbox(line)
        dx, dy = -(x0 + x1) / 2, i * pitch
        offsets.append((dx, dy))
        ux0, uy0, ux1, uy1 = min(ux0, x0 + dx), min(uy0, y0 + dy), max(ux1, x1 + dx), max(uy1, y1 + dy)
    return _Placed(offsets=tuple(offsets), bbox=(ux0, uy0, ux1, uy1))


@functools.lru_cache(maxsize=65536)
def _ref_length(spec: FontSpec, text: str) -> float:
    return get_font(spec, _REF_SIZE, needs_shaping(text)).getlength(text)


def fit_text(box: TextBox, width: int, height: int, font: str | None = None, options: GlyphOptions | None = None):
    """Chooses font, size and line breaks for one box on a ``width`` x ``height`` canvas.

    Args:
        box: The text box.
        width: Canvas width in pixels.
        height: Canvas height in pixels.
        font: Default font for a box that names none.
        options: Fitting options.

    Returns:
        A :class:`FittedText`.
    """
    opts = options or GlyphOptions()
    spec, text = select_font(box.text, font=box.font or font, language=box.language, on_missing=opts.on_missing)
    x0, y0, x1, y1 = _pixel_box(box, width, height)
    avail_w = max(1.0, x1 - x0 - 2 * opts.margin)
    avail_h = max(1.0, y1 - y0 - 2 * opts.margin)

    ref = get_font(spec, _REF_SIZE)
    ascent, descent = ref.getmetrics()
    line_h = ascent + descent
    if "\n" in text:
        candidates = [tuple(line.strip() for line in text.split("\n") if line.strip())]
    else:
        units, joiner = line_units(text)
        widths = [_ref_length(spec, u) for u in units]
        gap = _ref_length(spec, joiner) if joiner else 0.0
        max_lines = min(len(units), opts.max_lines) if opts.wrap else 1
        candidates = [split_balanced(units, joiner, n, widths, gap) for n in range(1, max_lines + 1)]

    # Pick the line breaking that allows the largest size, from advance widths at the reference size.
    lines, best = candidates[0], -1.0
    for cand in candidates:
        text_w = max(_ref_length(spec, c) for c in cand)
        text_h = line_h * len(cand) + _REF_SIZE * opts.line_spacing * (len(cand) - 1)
        rw, rh = _rotated_extent(text_w, text_h, box.angle)
        est = min(avail_w / max(rw, 1e-6), avail_h / max(rh, 1e-6))
        if est > best * 1.02:  # more lines only when clearly larger
            lines, best = cand, est

    # Ink extents scale almost linearly with the size of an unhinted font: estimate the size from the real ink
    # box at the reference size, then search on the real ink extent (a secant step down when too large, then one
    # size up at a time while the next size's measured ink still fits), so the result is the largest size whose
    # ink fits.
    def extent(size: int) -> tuple[float, float]:
        placed = _place(lines, spec, size, opts.line_spacing)
        return _rotated_extent(max(1.0, placed.width), max(1.0, placed.height), box.angle)

    rw, rh = extent(_REF_SIZE)
    size = max(opts.min_size, int(_REF_SIZE * min(avail_w / rw, avail_h / rh)))
    rw, rh = extent(size)
    while (rw > avail_w or rh > avail_h) and size > opts.min_size:
        size = max(opts.min_size, min(size - 1, int(size * min(avail_w / rw, avail_h / rh))))
        rw, rh = extent(size)
    while rw <= avail_w and rh <= avail_h:  # measured, not predicted: ink does not scale exactly linearly
        up_w, up_h = extent(size + 1)
        if up_w > avail_w or up_h > avail_h:
            break
        size, rw, rh = size + 1, up_w, up_h
    return FittedText(font=spec, size=size, lines=lines)


def _draw_lines(
    draw: ImageDraw.ImageDraw, origin: tuple[float, float], fitted: FittedText, placed: _Placed, fill: int
):
    font = get_font(fitted.font, fitted.size, needs_shaping("".join(fitted.lines)))
    for line, (dx, dy) in zip(fitted.lines, placed.offsets):
        draw.text((origin[0] + dx, origin[1] + dy), line, font=font, fill=fill)


def _draw_box(canvas: Image.Image, box: TextBox, fitted: FittedText, opts: GlyphOptions, ink: int) -> None:
    x0, y0, x1, y1 = _pixel_box(box, *canvas.size)
    placed = _place(fitted.lines, fitted.font, fitted.size, opts.line_spacing)
    bx0, by0, bx1, by1 = placed.bbox
    if box.angle % 360 == 0:
        # Drawing into a box-sized layer clips to the box: a box smaller than the minimum font size must not
        # spill into its neighbours.
        layer = Image.new("L", (x1 - x0, y1 - y0), 0)
        origin = ((x1 - x0) / 2 - (bx0 + bx1) / 2, (y1 - y0) / 2 - (by0 + by1) / 2)
        _draw_lines(ImageDraw.Draw(layer), origin, fitted, placed, 255)
        canvas.paste(ink, (x0, y0, x1, y1), mask=layer)
        return
    # Rotated: draw the text alone, rotate it, and paste it centred in the box.
    patch = Image.new("L", (math.ceil(bx1 - bx0) + 2, math.ceil(by1 - by0) + 2), 0)
    _draw_lines(ImageDraw.Draw(patch), (1 - bx0, 1 - by0), fitted, placed, 255)
    patch = patch.rotate(box.angle, resample=Image.Resampling.BICUBIC, expand=True)
    px = round((x0 + x1) / 2 - patch.width / 2)
    py = round((y0 + y1) / 2 - patch.height / 2)
    # Crop the patch to the box so rounding never puts ink outside it.
    left, top = max(px, x0), max(py, y0)
    right, bottom = min(px + patch.width, x1), min(py + patch.height, y1)
    if right <= left or bottom <= top:
        return
    patch = patch.crop((left - px, top - py, right - px, bottom - py))
    canvas.paste(ink, (left, top, right, bottom), mask=patch)


def render_glyph(
    layout: Layout,
    *,
    size: tuple[int, int] | None = None,
    font: str | None = None,
    mask: bool = False,
    options: GlyphOptions | None = None,
) -> Image.Image:
    """Renders a layout as a glyph image.

    Args:
        layout: The boxes to draw; its canvas size is the image size unless ``size`` is given.
        size: ``(width, height)`` overriding the layout's canvas size (boxes are normalised, so they scale).
        font: Font (name or path) for boxes that name none.
        mask: ``False`` gives black text on white RGB (GlyphControl's glyph image); ``True`` gives white text
            on black, mode ``"L"`` (a text mask).
        options: Fitting options (:class:`GlyphOptions`).

    Returns:
        The glyph image.

    Raises:
        textgen.core.layout.LayoutError: the layout is invalid.
        textgen.core.fonts.MissingGlyphError: a character no font can draw (with ``on_missing="error"``).
    """
    opts = options or GlyphOptions()
    if size is not None:
        layout = layout.resized(*size)
    layout.validate(check_fonts=False)
    background, ink = (0, 255) if mask else (255, 0)
    canvas = Image.new("L", (layout.width, layout.height), background)
    for box in layout.boxes:
        fitted = fit_text(box, layout.width, layout.height, font=font, options=opts)
        _draw_box(canvas, box, fitted, opts, ink)
    return canvas if mask else canvas.convert("RGB")
