"""Quality measures of planned layouts and of raw planner answers (used by training validation, tests and the
benchmark).
"""

from __future__ import annotations

from collections.abc import Sequence

from layout_model.td2 import parse_answer
from textgen.core.layout import TD2_GRID, Layout


def _norm(text: str) -> str:
    return " ".join(text.split())


def answer_is_correct(answer: str, expected: Sequence[str], grid: int = TD2_GRID) -> bool:
    """Whether a raw answer is usable as written: every line readable, each expected text on exactly one line
    and no other, and every box well-formed on the grid (``0 <= l < r <= grid``, same for ``t``, ``b``)."""
    lines, problems = parse_answer(answer)
    if problems or not lines:
        return False
    if sorted(_norm(ln.keyword) for ln in lines) != sorted(_norm(t) for t in expected):
        return False
    return all(0 <= x0 < x1 <= grid and 0 <= y0 < y1 <= grid for x0, y0, x1, y1 in (ln.coords for ln in lines))


def keyword_recall(layout: Layout, expected: Sequence[str]) -> float:
    """Fraction of the expected texts placed exactly once (1.0 when nothing is expected)."""
    if not expected:
        return 1.0
    texts = [_norm(t) for t in layout.texts]
    return sum(texts.count(_norm(t)) == 1 for t in expected) / len(expected)


def boxes_outside(layout: Layout) -> int:
    """Boxes not inside the canvas, or with no area."""
    return sum(not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1) for x0, y0, x1, y1 in (b.box for b in layout.boxes))


def overlapping_pairs(layout: Layout) -> int:
    """Pairs of boxes whose intersection has a positive area."""
    boxes = [b.box for b in layout.boxes]
    count = 0
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]):
                count += 1
    return count


def min_font_px(layout: Layout, width: int = 512, height: int = 512) -> float | None:
    """Smallest font size (px) the glyph renderer gives any box at ``width`` x ``height``; ``None`` if no box."""
    from textgen.core.glyph import GlyphOptions, fit_text

    sizes = [fit_text(b, width, height, options=GlyphOptions(on_missing="warn")).size for b in layout.boxes]
    return float(min(sizes)) if sizes else None


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def layout_iou(pred: Layout, ref: Layout) -> float:
    """Mean IoU between the boxes of the same text in ``pred`` and ``ref`` (0 for a text ``pred`` lacks)."""
    if not ref.boxes:
        return 1.0
    by_text = {_norm(b.text): b.box for b in pred.boxes}
    return sum(box_iou(by_text[_norm(b.text)], b.box) if _norm(b.text) in by_text else 0.0 for b in ref.boxes) / len(
        ref.boxes
    )
