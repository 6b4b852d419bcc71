"""How much room a text needs: the real ink extent of a text set on 1..N lines in the font that will draw it.

The planner sizes boxes in font pixels, so it needs the text's extent per pixel of font size. It measures the
ink box at a reference size with the font :mod:`textgen.core.fonts` selects for the text (CJK falls back to Noto
Sans CJK), stacking lines the way :func:`textgen.core.glyph.render_glyph` does (centred, a pitch of
``size * (1 + line_spacing)``). A box with exactly this aspect is one the glyph renderer fills edge to edge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from textgen.core.fonts import FontSpec, MissingGlyphError, get_font, resolve_font, select_font
from textgen.core.script import line_units, needs_shaping, split_balanced

REF_SIZE = 64  # font size (px) at which extents are measured; they scale linearly with the size
LINE_SPACING = 0.15  # matches textgen.core.glyph.GlyphOptions.line_spacing
MAX_LINES = 6  # matches textgen.core.glyph.GlyphOptions.max_lines


@dataclass(frozen=True)
class TextBlock:
    """A text broken onto lines, with its ink extent per pixel of font size.

    Args:
        lines: The lines, top to bottom.
        width: Ink width divided by the font size.
        height: Ink height (first line's top to last line's bottom) divided by the font size.
    """

    lines: tuple[str, ...]
    width: float
    height: float

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def size_for(self, max_width: float, max_height: float) -> float:
        """The largest font size (px) at which the block fits ``max_width`` x ``max_height`` pixels."""
        return min(max_width / self.width, max_height / self.height)


@functools.lru_cache(maxsize=64)
def _default_spec() -> FontSpec:
    return resolve_font(None)


@functools.lru_cache(maxsize=16384)
def font_for(text: str, font: str | None = None, language: str | None = None) -> FontSpec:
    """The font that will draw ``text`` (the default, or the CJK face for CJK); the default when none can."""
    try:
        return select_font(text, font=font, language=language)[0]
    except MissingGlyphError:
        return resolve_font(font) if font else _default_spec()


@functools.lru_cache(maxsize=65536)
def _line_ink(spec: FontSpec, line: str) -> tuple[float, float, float, float]:
    return get_font(spec, REF_SIZE, needs_shaping(line)).getbbox(line)


def _block(spec: FontSpec, lines: tuple[str, ...]) -> TextBlock:
    pitch = REF_SIZE * (1 + LINE_SPACING)
    width = 0.0
    top, bottom = float("inf"), float("-inf")
    for i, line in enumerate(lines):
        x0, y0, x1, y1 = _line_ink(spec, line)
        width = max(width, x1 - x0)
        top, bottom = min(top, y0 + i * pitch), max(bottom, y1 + i * pitch)
    # Whitespace-only or zero-ink text still needs a box: fall back to one em per character and line.
    width = max(width, REF_SIZE * 0.3)
    height = max(bottom - top, REF_SIZE * 0.5) if bottom > top else REF_SIZE * 0.7 * len(lines)
    return TextBlock(lines=lines, width=width / REF_SIZE, height=height / REF_SIZE)


@functools.lru_cache(maxsize=16384)
def text_blocks(
    text: str, font: str | None = None, language: str | None = None, max_lines: int = MAX_LINES
) -> tuple[TextBlock, ...]:
    """The text set on 1, 2, ... lines (as many as it has words or CJK characters, at most ``max_lines``).

    Args:
        text: The text; explicit ``\\n`` line breaks are kept and then it is a single candidate.
        font: Font name or path (``None``: the default for the text's script).
        language: Language tag for the CJK face.
        max_lines: Most lines a text is broken onto.

    Returns:
        One :class:`TextBlock` per line count, fewest lines first.
    """
    spec = font_for(text, font, language)
    if "\n" in text:
        lines = tuple(part.strip() for part in text.split("\n") if part.strip()) or (text,)
        return (_block(spec, lines),)
    units, joiner = line_units(text)
    widths = [_line_ink(spec, u)[2] - _line_ink(spec, u)[0] for u in units]
    gap = get_font(spec, REF_SIZE, needs_shaping(text)).getlength(joiner) if joiner else 0.0
    blocks = []
    for n in range(1, min(len(units), max(1, max_lines)) + 1):
        lines = split_balanced(units, joiner, n, widths, gap)
        if blocks and lines == blocks[-1].lines:
            continue
        blocks.append(_block(spec, lines))
    return tuple(blocks)


def clear_caches() -> None:
    """Forgets every measured text (benchmarks time cold planning with it; fonts stay loaded)."""
    for cached in (text_blocks, font_for, _line_ink):
        cached.cache_clear()
