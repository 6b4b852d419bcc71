"""The rule planner: designer-like layouts with no model, in well under a millisecond.

A layout is a column of text blocks read top to bottom. The first text is the title: it spans most of the free
width (or is capped in height, for a short word) and is broken onto lines when that makes it larger. Every
other text is a subtitle, set at a fraction of the title's font size but never below a readable minimum, and
broken onto lines when it would not fit the width. Blocks keep a margin from the canvas edges and a gap from
each other; when the column is taller than the canvas, every size shrinks by the same factor. Each box has
the ink aspect of its text in the font that will draw it (:mod:`layout_model.measure`), so the glyph renderer
fills it.

The seed picks a style (centred column, title at the top and the rest at the bottom, left- or right-aligned
column), where the column sits, how wide the title is and how much smaller the subtitles are: the same seed
gives the same layout, other seeds give variety.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from layout_model.measure import TextBlock, text_blocks
from layout_model.text import extract_texts
from textgen.core.layout import Layout, TextBox

STYLES = ("center", "top-bottom", "left", "right")

PixelBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class RuleOptions:
    """Design rules of :class:`RulePlanner`; lengths are fractions of the canvas's shorter side.

    Args:
        margin: Space kept free along every canvas edge.
        gap: Vertical space between two blocks.
        title_width: Range of the fraction of the free width the title spans (the seed picks within it).
        title_max_height: The title block is at most this fraction of the free height.
        subtitle_ratio: Range of a subtitle's font size relative to the title's.
        min_font: Smallest font size a subtitle is given while there is room (a readable size).
        padding: Space between a block's ink and its box, relative to the font size (the renderer keeps a
            1 px margin inside each box and anti-aliasing needs a pixel).
        styles: Styles the seed chooses from (see :data:`STYLES`).
        anchors: Where the seed may put a column in the free height (0 top, 0.5 centre, 1 bottom); repeats
            weight the choice.
        max_lines: Most lines one text is broken onto.
        font: The font the boxes are drawn in (set on every box, and measured with); ``None``: the renderer's
            default for the text's script.
        min_height: Smallest box height, as a fraction of the shorter side: a model that paints text legibly only
            from some height up declares it (``PipelineConfig.planner_options``); subtitles are raised to it, and
            the column shrinks no further than it unless the canvas cannot hold the texts otherwise.
        colors: Read the prompt's text colour words (``white text``) into the boxes' ``color``.
    """

    margin: float = 0.07
    gap: float = 0.035
    title_width: tuple[float, float] = (0.62, 0.9)
    title_max_height: float = 0.3
    subtitle_ratio: tuple[float, float] = (0.42, 0.62)
    min_font: float = 0.04
    padding: float = 0.04
    styles: tuple[str, ...] = STYLES
    anchors: tuple[float, ...] = (0.0, 0.0, 0.25, 0.5)  # mostly high: posters lead with their title
    max_lines: int = 6
    font: str | None = None
    min_height: float = 0.0
    colors: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.min_height < 1:
            raise ValueError(f"RuleOptions.min_height must be in [0, 1), got {self.min_height}")
        unknown = [s for s in self.styles if s not in STYLES]
        if unknown or not self.styles:
            raise ValueError(f"RuleOptions.styles: expected a non-empty subset of {STYLES}, got {self.styles!r}")
        if not self.anchors or any(not 0 <= a <= 1 for a in self.anchors):
            raise ValueError(f"RuleOptions.anchors: expected values in [0, 1], got {self.anchors!r}")
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"RuleOptions.margin must be in [0, 0.5), got {self.margin}")
        for name in ("title_width", "subtitle_ratio"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"RuleOptions.{name} must be a range inside (0, 1], got {(lo, hi)}")


@dataclass(frozen=True)
class _Padding:
    """Space between a block's ink and its box: ``px + rel * size`` on every side."""

    px: float
    rel: float

    def box_size(self, block: TextBlock, size: float) -> tuple[float, float]:
        pad = 2 * (self.px + self.rel * size)
        return block.width * size + pad, block.height * size + pad

    def size_for_height(self, block: TextBlock, box_h: float) -> float:
        """The font size whose padded box is ``box_h`` high."""
        return max(0.0, (box_h - 2 * self.px) / (block.height + 2 * self.rel))

    def size_for(self, block: TextBlock, max_w: float, max_h: float) -> float:
        """The largest font size whose padded box fits ``max_w`` x ``max_h``."""
        w = (max_w - 2 * self.px) / (block.width + 2 * self.rel)
        h = (max_h - 2 * self.px) / (block.height + 2 * self.rel)
        return max(1e-3, min(w, h))


@dataclass
class _Item:
    text: str
    block: TextBlock
    size: float  # font size in px


def _best_block(blocks: Sequence[TextBlock], max_w: float, max_h: float, pad: _Padding) -> tuple[TextBlock, float]:
    """The line breaking that allows the largest size in ``max_w`` x ``max_h``; more lines only if clearly larger."""
    best, best_size = blocks[0], pad.size_for(blocks[0], max_w, max_h)
    for block in blocks[1:]:
        size = pad.size_for(block, max_w, max_h)
        if size > best_size * 1.1:
            best, best_size = block, size
    return best, best_size


def _fewest_lines(blocks: Sequence[TextBlock], size: float, max_w: float, pad: _Padding) -> tuple[TextBlock, float]:
    """The fewest lines on which the text fits ``max_w`` at ``size``; else the breaking that fits it largest."""
    for block in blocks:
        if pad.box_size(block, size)[0] <= max_w:
            return block, size
    block = min(blocks, key=lambda b: b.width)
    return block, pad.size_for(block, max_w, float("inf"))


def _overlaps(a: PixelBox, b: PixelBox, gap: float = 0.0) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


class RulePlanner:
    """Plans layouts with design rules; no model, deterministic per seed.

    Args:
        options: The design rules.

    Example:
        >>> RulePlanner().plan('A jazz poster that says "BLUE NOTE"', seed=0).texts
        ['BLUE NOTE']
    """

    name_or_path = "rule"

    def __init__(self, options: RuleOptions | None = None):
        self.options = options or RuleOptions()

    # --------------------------------------------------------------------------------------------- public
    def plan(
        self, prompt: str, texts: Sequence[str] | None = None, width: int = 512, height: int = 512, seed: int = 0
    ) -> Layout:
        """Plans the layout of the texts ``prompt`` quotes (or of ``texts``) on a ``width`` x ``height`` canvas.

        Args:
            prompt: The prompt; its quoted spans are the texts unless ``texts`` is given.
            texts: Explicit texts, overriding extraction.
            width: Canvas width in pixels.
            height: Canvas height in pixels.
            seed: Picks the style; the same seed gives the same layout.

        Returns:
            The layout, boxes in reading order, caption set to the prompt.

        Raises:
            ValueError: a non-positive canvas size.
        """
        _check_size(width, height)
        found = extract_texts(prompt, texts)
        boxes = self.place(found, width, height, seed)
        if self.options.colors and boxes:
            from dataclasses import replace

            from textgen.core.colors import PALETTE, text_colors_from_prompt, to_hex

            names = text_colors_from_prompt(prompt)
            if names:
                boxes = [replace(b, color=to_hex(PALETTE[names[i % len(names)]])) for i, b in enumerate(boxes)]
        return Layout(width=width, height=height, boxes=tuple(boxes), caption=prompt)

    def plan_batch(
        self,
        prompts: Sequence[str],
        texts: Sequence[Sequence[str] | None] | None = None,
        width: int = 512,
        height: int = 512,
        seed: int | Sequence[int] = 0,
    ) -> list[Layout]:
        """:meth:`plan` for each prompt (``texts`` and ``seed`` per prompt, or one seed for all)."""
        texts = list(texts) if texts is not None else [None] * len(prompts)
        seeds = [seed] * len(prompts) if isinstance(seed, int) else list(seed)
        if len(texts) != len(prompts) or len(seeds) != len(prompts):
            raise ValueError(f"plan_batch: {len(prompts)} prompts but {len(texts)} texts and {len(seeds)} seeds")
        return [self.plan(p, t, width, height, s) for p, t, s in zip(prompts, texts, seeds)]

    def place(self, texts: Sequence[str], width: int, height: int, seed: int = 0) -> list[TextBox]:
        """Boxes for ``texts`` (already extracted) on a ``width`` x ``height`` canvas, in reading order."""
        if not texts:
            return []
        o = self.options
        rng = random.Random(seed)
        style = rng.choice(o.styles)
        anchor = rng.choice(o.anchors)
        title_frac = rng.uniform(*o.title_width)
        ratio = rng.uniform(*o.subtitle_ratio)
        title_gap_factor = rng.uniform(1.0, 2.0)

        short = min(width, height)
        margin = o.margin * short
        free_w, free_h = width - 2 * margin, height - 2 * margin
        gap = o.gap * short
        min_font = o.min_font * short
        pad = self._padding(short)

        # 1. Sizes: the title first, then subtitles relative to it.
        min_box_h = o.min_height * short
        items = self._size_items(texts, free_w, free_h, title_frac, ratio, min_font, pad, min_box_h)
        gaps = [gap * (title_gap_factor if i == 0 else 1.0) for i in range(len(items) - 1)]

        # 2. Fit the column into the free height: shrink every size and gap by one factor (the constant part
        # of the padding stays, unless the canvas is too small even for that).
        def column_height() -> float:
            return sum(pad.box_size(it.block, it.size)[1] for it in items) + sum(gaps)

        total = column_height()
        if total > free_h and min_box_h > 0:
            # First shrink only what stands above the minimum height (the title), keeping the rest legible.
            floors = [pad.size_for_height(it.block, min_box_h) for it in items]
            for _ in range(8):
                excess = column_height() - free_h
                room = [max(0.0, it.size - f) for it, f in zip(items, floors)]
                if excess <= 0 or sum(room) <= 0:
                    break
                per_size = sum(r * (it.block.height + 2 * pad.rel) for r, it in zip(room, items))
                cut = min(1.0, excess / max(per_size, 1e-9))
                for it, r in zip(items, room):
                    it.size -= r * cut
            total = column_height()
        if total > free_h:
            fixed = 2 * pad.px * len(items)
            if fixed >= free_h:
                pad, fixed = _Padding(0.0, pad.rel), 0.0
            scale = (free_h - fixed) / (column_height() - fixed) * 0.999
            for it in items:
                it.size *= scale
            gaps = [g * scale for g in gaps]
            total = column_height()

        # 3. Position: vertically by style and anchor, horizontally by alignment.
        heights = [pad.box_size(it.block, it.size)[1] for it in items]
        if style == "top-bottom" and len(items) > 1:
            # Title at the top, the rest at the bottom, the slack between them.
            tops = _stack_tops(heights, gaps, margin)
            slack = max(0.0, free_h - total)
            tops = [t if i == 0 else t + slack for i, t in enumerate(tops)]
        else:
            tops = _stack_tops(heights, gaps, margin + max(0.0, free_h - total) * anchor)
        align = {"left": 0.0, "right": 1.0}.get(style, 0.5)

        boxes = []
        for it, top in zip(items, tops):
            w, h = pad.box_size(it.block, it.size)
            x0 = margin + (free_w - w) * align
            boxes.append(_to_textbox(it.text, (x0, top, x0 + w, top + h), width, height, font=o.font))
        return boxes

    def place_missing(self, layout: Layout, texts: Sequence[str], seed: int = 0) -> Layout:
        """Adds boxes for ``texts`` in the free space of ``layout``, as subtitles, without overlapping it.

        The size starts at a subtitle's and shrinks until a free spot is found, scanning top to bottom; when the
        canvas is full the box goes where it overlaps the least. The result is in reading order.

        Args:
            layout: A valid layout whose boxes must stay where they are.
            texts: The texts to add.
            seed: Picks the preferred alignment.

        Returns:
            The layout with the new boxes, sorted top to bottom.
        """
        if not texts:
            return layout
        width, height = layout.width, layout.height
        o = self.options
        rng = random.Random(seed)
        short = min(width, height)
        margin, gap, min_font = o.margin * short, o.gap * short / 2, o.min_font * short
        taken: list[PixelBox] = [
            tuple(v * s for v, s in zip(b.box, (width, height, width, height))) for b in layout.boxes
        ]
        aligns = [0.5, 0.0, 1.0]
        rng.shuffle(aligns)
        new_boxes = []
        for text in texts:
            blocks = text_blocks(text, max_lines=o.max_lines)
            size = max(min_font, 0.1 * short)
            box = None
            while box is None:
                box = self._free_spot(blocks, size, width, height, margin, gap, taken, aligns)
                if box is None and size <= min_font / 2:
                    box = self._least_overlap(blocks, size, width, height, taken)
                size *= 0.8
            taken.append(box)
            new_boxes.append(_to_textbox(text, box, width, height))
        boxes = sorted(list(layout.boxes) + new_boxes, key=lambda b: (round(b.box[1], 4), b.box[0]))
        return Layout(width=width, height=height, boxes=tuple(boxes), caption=layout.caption)

    # -------------------------------------------------------------------------------------------- helpers
    def _padding(self, short: float) -> _Padding:
        # A pixel for anti-aliasing (the renderer also keeps 1 px inside each box), less on tiny canvases.
        return _Padding(px=min(1.0, 0.01 * short), rel=self.options.padding)

    def _size_items(
        self,
        texts: Sequence[str],
        free_w: float,
        free_h: float,
        title_frac: float,
        ratio: float,
        min_font: float,
        pad: _Padding,
        min_box_h: float = 0.0,
    ) -> list[_Item]:
        o = self.options
        title_blocks = text_blocks(texts[0], font=o.font, max_lines=o.max_lines)
        block, size = _best_block(title_blocks, free_w * title_frac, free_h * o.title_max_height, pad)
        items = [_Item(texts[0], block, size)]
        for text in texts[1:]:
            # Smaller than the title, readable, and on as few lines as the width allows.
            wanted = min(max(size * ratio, min_font), size * 0.9)
            wanted = max(wanted, pad.size_for_height(text_blocks(text, font=o.font, max_lines=1)[0], min_box_h))
            blocks = text_blocks(text, font=o.font, max_lines=o.max_lines)
            sub_block, sub_size = _fewest_lines(blocks, wanted, free_w, pad)
            items.append(_Item(text, sub_block, sub_size))
        return items

    def _free_spot(self, blocks, size, width, height, margin, gap, taken, aligns) -> PixelBox | None:
        pad = self._padding(min(width, height))
        block, size = _fewest_lines(blocks, size, width - 2 * margin, pad)
        w, h = pad.box_size(block, size)
        step = max(1.0, height / 64)
        top = margin
        while top + h <= height - margin + 1e-6:
            for align in aligns:
                x0 = margin + (width - 2 * margin - w) * align
                box = (x0, top, x0 + w, top + h)
                if not any(_overlaps(box, t, gap) for t in taken):
                    return box
            top += step
        return None

    def _least_overlap(self, blocks, size, width, height, taken) -> PixelBox:
        pad = self._padding(min(width, height))
        block, size = _fewest_lines(blocks, size, width, pad)
        w, h = pad.box_size(block, size)
        w, h = min(width, w), min(height, h)
        best, best_area = (0.0, 0.0, w, h), float("inf")
        steps = 16
        for j in range(steps + 1):
            for i in range(steps + 1):
                x0, y0 = (width - w) * i / steps, (height - h) * j / steps
                box = (x0, y0, x0 + w, y0 + h)
                area = sum(_intersection(box, t) for t in taken)
                if area < best_area:
                    best, best_area = box, area
        return best


def _stack_tops(heights: Sequence[float], gaps: Sequence[float], top: float) -> list[float]:
    tops = []
    for i, h in enumerate(heights):
        tops.append(top)
        top += h + (gaps[i] if i < len(gaps) else 0.0)
    return tops


def _intersection(a: PixelBox, b: PixelBox) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _to_textbox(text: str, box: PixelBox, width: int, height: int, font: str | None = None) -> TextBox:
    x0, y0, x1, y1 = box
    norm = (x0 / width, y0 / height, x1 / width, y1 / height)
    return TextBox(text=text, box=tuple(min(1.0, max(0.0, v)) for v in norm), font=font)


def _check_size(width: int, height: int) -> None:
    if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
        raise ValueError(f"canvas size must be positive integers, got {width!r}x{height!r}")
