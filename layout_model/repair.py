"""From whatever a language model wrote to a valid layout, or a reason why not.

:func:`repair_answer` reads the answer leniently (:func:`layout_model.td2.parse_answer`), then per line: orders
swapped corners, clips to the canvas, drops boxes thinner than a grid cell, matches the keyword to a text the
prompt asked for (exactly, ignoring case and spacing, or by close spelling), drops keywords the prompt did not
ask for, duplicates, boxes that mostly cover an earlier one (a slight overlap is trimmed off instead), and boxes
too small to set their text legibly. Texts the model left out are added in the free space by the rule planner.
When the model placed too few of the texts itself, there is nothing worth repairing: the caller falls back to
the rule planner, and the report says why.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from layout_model.measure import text_blocks
from layout_model.rule import RulePlanner
from layout_model.td2 import parse_answer
from textgen.core.layout import TD2_GRID, Layout, LayoutError, TextBox


@dataclass(frozen=True)
class RepairOptions:
    """How much of a model's answer is repaired before it is given up on.

    Args:
        min_matched: Fraction of the expected texts the model must place itself (after repair); below it the
            answer is unusable and the rule planner plans the whole layout.
        fuzzy_threshold: Similarity (0-1, :class:`difflib.SequenceMatcher` ratio, case-insensitive) above which
            a misspelt keyword is taken for an expected text.
        max_overlap: A box whose overlap with an earlier one exceeds this fraction of the smaller box is
            dropped, and its text re-placed in free space; a smaller overlap is trimmed off the later box.
        min_extent: Boxes narrower or lower than this (fraction of the canvas; default one grid cell) after
            clipping are dropped.
        min_font: A box in which the text cannot be set at least this large (fraction of the canvas's shorter
            side, in font size) is dropped and its text re-placed.
    """

    min_matched: float = 0.5
    fuzzy_threshold: float = 0.8
    max_overlap: float = 0.1
    min_extent: float = 1 / TD2_GRID
    min_font: float = 0.02


@dataclass
class RepairReport:
    """What happened to one answer.

    Args:
        raw: The model's answer as decoded.
        expected: The texts the prompt asked for.
        problems: Lines that could not be read.
        repairs: What was changed, one message each (``"line 2 'OPEN': swapped left and right"``).
        fallback: Why the answer was unusable and the rule planner took over; ``None`` when it was used.
        matched: How many expected texts the model placed itself.
    """

    raw: str
    expected: list[str]
    problems: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    fallback: str | None = None
    matched: int = 0

    @property
    def used_model(self) -> bool:
        return self.fallback is None


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _match(keyword: str, expected: Sequence[str], taken: set[str], threshold: float) -> tuple[str | None, str]:
    """The expected text ``keyword`` stands for, and how it matched (``exact``/``normalised``/``fuzzy``/``''``)."""
    if keyword in expected:
        return keyword, "exact"
    norm = _norm(keyword)
    for text in expected:
        if _norm(text) == norm:
            return text, "normalised"
    best, best_ratio = None, threshold
    for text in expected:
        if text in taken:
            continue
        ratio = difflib.SequenceMatcher(None, norm, _norm(text)).ratio()
        if ratio >= best_ratio:
            best, best_ratio = text, ratio
    return best, ("fuzzy" if best is not None else "")


def _overlap_fraction(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if smaller > 0 else 1.0


def _trim(box: tuple[float, ...], others: Sequence[tuple[float, ...]]) -> tuple[float, ...] | None:
    """``box`` with every overlap cut off, each time along the edge that keeps the most area."""
    x0, y0, x1, y1 = box
    for _ in range(len(others) + 1):
        hit = next((o for o in others if min(x1, o[2]) > max(x0, o[0]) and min(y1, o[3]) > max(y0, o[1])), None)
        if hit is None:
            return (x0, y0, x1, y1)
        options = [(hit[2], y0, x1, y1), (x0, y0, hit[0], y1), (x0, hit[3], x1, y1), (x0, y0, x1, hit[1])]
        options = [c for c in options if c[2] > c[0] and c[3] > c[1]]
        if not options:
            return None
        x0, y0, x1, y1 = max(options, key=lambda c: (c[2] - c[0]) * (c[3] - c[1]))
    return None


def _max_font_px(text: str, box: tuple[float, ...], width: int, height: int) -> float:
    """The largest font size at which ``text`` (on its best number of lines) fits ``box`` on the canvas."""
    # The glyph renderer keeps a pixel free along every edge of a box.
    w, h = (box[2] - box[0]) * width - 2, (box[3] - box[1]) * height - 2
    return max(0.0, max(block.size_for(w, h) for block in text_blocks(text)))


def repair_answer(
    answer: str,
    expected: Sequence[str] | None,
    width: int = 512,
    height: int = 512,
    *,
    caption: str | None = None,
    rule: RulePlanner | None = None,
    seed: int = 0,
    grid: int = TD2_GRID,
    options: RepairOptions | None = None,
) -> tuple[Layout | None, RepairReport]:
    """Turns a model's answer into a valid layout of the expected texts.

    Args:
        answer: The model's answer (``keyword l,t,r,b`` lines, however well formed).
        expected: The texts the prompt asks for; ``None`` keeps whatever keywords the model chose (a planner
            asked to invent the text), dropping only duplicates.
        width: Canvas width in pixels.
        height: Canvas height in pixels.
        caption: Caption of the resulting layout.
        rule: The planner that places texts the model left out (default :class:`RulePlanner`).
        seed: Seed for those placements.
        grid: The coordinate grid of the answer (TextDiffuser-2: 128).
        options: Repair thresholds.

    Returns:
        ``(layout, report)``; ``layout`` is ``None`` when the answer is unusable (``report.fallback`` says why).
        Never raises on malformed answers.
    """
    opts = options or RepairOptions()
    rule = rule or RulePlanner()
    wanted = list(dict.fromkeys(expected)) if expected is not None else None
    report = RepairReport(raw=answer, expected=list(wanted or []))
    parsed, report.problems = parse_answer(answer if isinstance(answer, str) else "")

    kept: list[TextBox] = []
    taken: set[str] = set()
    for line in parsed:
        where = f"line {line.lineno} {line.keyword[:40]!r}"
        # 1. Match the keyword to an expected text.
        if wanted is None:
            text = line.keyword
            if text in taken:
                report.repairs.append(f"{where}: dropped a duplicate")
                continue
        else:
            text, how = _match(line.keyword, wanted, taken, opts.fuzzy_threshold)
            if text is None:
                report.repairs.append(f"{where}: dropped, the prompt does not ask for this text")
                continue
            if text in taken:
                report.repairs.append(f"{where}: dropped a duplicate of {text!r}")
                continue
            if how != "exact":
                report.repairs.append(f"{where}: taken for {text!r} ({how} match)")
        # 2. Geometry: order the corners, clip to the canvas, drop slivers.
        left, top, right, bottom = line.coords
        if left > right:
            left, right = right, left
            report.repairs.append(f"{where}: swapped left and right")
        if top > bottom:
            top, bottom = bottom, top
            report.repairs.append(f"{where}: swapped top and bottom")
        unit = [v / grid for v in (left, top, right, bottom)]
        clipped = [min(1.0, max(0.0, v)) for v in unit]
        if clipped != unit:
            report.repairs.append(f"{where}: clipped {[round(v) for v in line.coords]} to the {grid} grid")
        x0, y0, x1, y1 = clipped
        if x1 - x0 < opts.min_extent or y1 - y0 < opts.min_extent:
            report.repairs.append(f"{where}: dropped a box thinner than a grid cell")
            continue
        # 3. Overlap with an earlier box: the earlier one wins; a slight overlap is trimmed off, a large one
        # sends this text to be re-placed below.
        box = (x0, y0, x1, y1)
        clash = next((b for b in kept if _overlap_fraction(box, b.box) > opts.max_overlap), None)
        if clash is not None:
            report.repairs.append(f"{where}: dropped, it covers the box of {clash.text!r}")
            continue
        trimmed = _trim(box, [b.box for b in kept])
        if trimmed != box:
            if trimmed is None or min(trimmed[2] - trimmed[0], trimmed[3] - trimmed[1]) < opts.min_extent:
                report.repairs.append(f"{where}: dropped, nothing is left after trimming its overlaps")
                continue
            report.repairs.append(f"{where}: trimmed where it overlapped another box")
            box = trimmed
        # 4. Readability: the text must fit its box at a legible size.
        size = _max_font_px(text, box, width, height)
        if size < opts.min_font * min(width, height):
            report.repairs.append(f"{where}: dropped, the text would be {size:.0f} px high in its box")
            continue
        kept.append(TextBox(text=text, box=box))
        taken.add(text)

    report.matched = len(kept)
    if wanted is not None and wanted and len(kept) < opts.min_matched * len(wanted):
        read = f"{len(parsed)} readable line(s)" + (f", {len(report.problems)} unreadable" if report.problems else "")
        report.fallback = f"the model placed {len(kept)} of {len(wanted)} texts ({read})"
        return None, report
    if wanted is None and not kept:
        report.fallback = "the model wrote no readable 'keyword l,t,r,b' line"
        return None, report

    layout = Layout(width=width, height=height, boxes=tuple(kept), caption=caption)
    missing = [t for t in (wanted or []) if t not in taken]
    if missing:
        layout = rule.place_missing(layout, missing, seed=seed)
        report.repairs.extend(f"added {t!r} in free space (the model left it out)" for t in missing)
    try:
        layout.validate(check_fonts=False)
    except LayoutError as err:  # defensive: repair should always produce a valid layout
        report.fallback = f"the repaired layout is invalid: {err}"
        return None, report
    return layout, report
