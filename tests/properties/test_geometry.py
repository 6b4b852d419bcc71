"""Property-based tests of the geometric core: glyph fitting, the rule planner, layout round trips (Hypothesis).

Each property is what a user relies on, checked over many generated cases rather than a handful of examples:
the fitted text is the largest that fits its box, planned boxes never overlap or leave the canvas, and a layout
survives every serialisation.
"""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layout_model.metrics import boxes_outside, overlapping_pairs
from layout_model.rule import RuleOptions, RulePlanner
from textgen.core.fonts import select_font
from textgen.core.glyph import GlyphOptions, _place, _rotated_extent, fit_text
from textgen.core.layout import Layout, TextBox

FONTS = ["noto-sans", "noto-sans-bold", "noto-serif", "league-spartan", "bebas-neue"]
WORD = st.text(alphabet=string.ascii_letters + string.digits + "$%#!?.", min_size=1, max_size=9)
TEXT = st.lists(WORD, min_size=1, max_size=4).map(" ".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _extent(lines, spec, size, angle, spacing):
    placed = _place(tuple(lines), spec, size, spacing)
    return _rotated_extent(max(1.0, placed.width), max(1.0, placed.height), angle)


@SETTINGS
@given(
    text=TEXT,
    w=st.integers(16, 400),
    h=st.integers(10, 200),
    font=st.sampled_from(FONTS),
    angle=st.sampled_from([0.0, 0.0, 0.0, 7.0, -12.0, 30.0]),
)
def test_fitted_size_is_the_largest_whose_real_ink_fits(text, w, h, font, angle):
    canvas = 512
    box = TextBox(text, (0.0, 0.0, w / canvas, h / canvas), angle=angle, font=font)
    opts = GlyphOptions()
    fitted = fit_text(box, canvas, canvas, options=opts)
    spec, _ = select_font(text, font=font)
    avail_w, avail_h = w - 2 * opts.margin, h - 2 * opts.margin
    rw, rh = _extent(fitted.lines, spec, fitted.size, angle, opts.line_spacing)
    if fitted.size > opts.min_size:
        assert rw <= avail_w + 1e-6 and rh <= avail_h + 1e-6, (fitted, rw, rh)
    up_w, up_h = _extent(fitted.lines, spec, fitted.size + 1, angle, opts.line_spacing)
    assert up_w > avail_w or up_h > avail_h, f"size {fitted.size + 1} fits too: {fitted}"


PROMPT_TEXTS = st.lists(TEXT, min_size=1, max_size=5, unique=True)  # the planner places distinct texts


@SETTINGS
@given(
    texts=PROMPT_TEXTS,
    width=st.integers(64, 1024),
    height=st.integers(64, 1024),
    seed=st.integers(0, 2**16),
    font=st.sampled_from([None, "noto-sans-bold"]),
    min_height=st.sampled_from([0.0, 0.0, 0.1, 0.2]),
)
def test_planned_boxes_never_overlap_or_leave_the_canvas(texts, width, height, seed, font, min_height):
    prompt = "a poster that reads " + " ".join(f'"{t}"' for t in texts)
    planner = RulePlanner(RuleOptions(font=font, min_height=min_height))
    layout = planner.plan(prompt, width=width, height=height, seed=seed)
    assert layout.texts == texts
    assert boxes_outside(layout) == 0
    assert overlapping_pairs(layout) == 0
    layout.validate()
    tops = [b.box[1] for b in layout.boxes]
    assert tops == sorted(tops)  # reading order, top to bottom


@SETTINGS
@given(
    texts=st.lists(WORD, min_size=1, max_size=2),
    width=st.integers(256, 1024),
    height=st.integers(256, 1024),
    seed=st.integers(0, 1000),
)
def test_added_boxes_keep_the_gap_from_every_other_box(texts, width, height, seed):
    """place_missing on a sparse canvas: each new box stays at least the minimum gap away from all others."""
    planner = RulePlanner()
    base = Layout(width, height, (TextBox("TITLE", (0.3, 0.1, 0.7, 0.2)),))
    layout = planner.place_missing(base, texts, seed=seed)
    gap = planner.options.gap * min(width, height) / 2
    px = [tuple(v * s for v, s in zip(b.box, (width, height, width, height))) for b in layout.boxes]
    for i, a in enumerate(px):
        for b in px[i + 1 :]:
            dx = max(b[0] - a[2], a[0] - b[2])
            dy = max(b[1] - a[3], a[1] - b[3])
            assert max(dx, dy) >= gap - 1e-6, (a, b, gap)


BOX = st.tuples(st.floats(0, 0.8), st.floats(0, 0.8), st.floats(0.05, 0.2), st.floats(0.05, 0.2)).map(
    lambda t: (round(t[0], 4), round(t[1], 4), round(t[0] + t[2], 4), round(t[1] + t[3], 4))
)


@SETTINGS
@given(
    boxes=st.lists(st.tuples(WORD, BOX), min_size=1, max_size=5),
    width=st.integers(32, 2048),
    height=st.integers(32, 2048),
)
def test_layout_survives_json_pixels_and_td2(boxes, width, height):
    layout = Layout(width, height, tuple(TextBox(t, b) for t, b in boxes), caption="a caption")
    layout.validate()
    again = Layout.from_json(layout.to_json())
    assert again == layout
    pixels = Layout.from_pixels([(b.text, b.to_pixels(width, height)) for b in layout.boxes], width, height)
    for a, b in zip(pixels.boxes, layout.boxes):  # integer pixels: within half a pixel of the original
        assert abs(a.box[0] - b.box[0]) * width <= 0.5 + 1e-9 and abs(a.box[3] - b.box[3]) * height <= 0.5 + 1e-9
    from layout_model.td2 import parse_answer

    lines, problems = parse_answer(layout.to_td2())
    assert not problems and [line.keyword for line in lines] == layout.texts
    for line, box in zip(lines, layout.boxes):
        assert all(abs(p / 128 - q) <= 1.0 / 256 + 1e-9 for p, q in zip(line.coords, box.box))
