import random

import numpy as np
import pytest

from layout_model.metrics import boxes_outside, keyword_recall, overlapping_pairs
from layout_model.rule import RuleOptions, RulePlanner
from textgen.core.glyph import fit_text, render_glyph
from textgen.core.layout import Layout, TextBox

PROMPTS = [
    'A sign that says "accept".',
    'A vintage poster for a jazz night that says "BLUE NOTE" with "every friday at eight" and "free entry"',
    'the saying "BE EXCELLENT TO EACH OTHER" written on a wall',
    'a cake with 「生日快乐」 and "Happy Birthday Anna"',
    'a fence with "XXKPO" "Dmm" "STEPHENS" "GUILTY"',
    'a sign "OK"',
    'a long notice "' + " ".join(["word"] * 40) + '"',
    "a menu " + " ".join(f'"item number {i}"' for i in range(12)),
]
SIZES = [(512, 512), (1024, 256), (256, 1024), (768, 512), (64, 64)]


@pytest.mark.parametrize("size", SIZES)
def test_layouts_are_valid_inside_and_free_of_overlaps(size):
    planner = RulePlanner()
    for prompt in PROMPTS:
        for seed in range(6):
            layout = planner.plan(prompt, width=size[0], height=size[1], seed=seed)
            layout.validate()
            assert layout.size == size
            assert keyword_recall(layout, planner_texts(prompt)) == 1.0
            assert boxes_outside(layout) == 0
            assert overlapping_pairs(layout) == 0, (prompt, seed, layout.boxes)


def planner_texts(prompt):
    from layout_model.text import extract_texts

    return extract_texts(prompt)


def test_same_seed_same_layout_other_seeds_vary():
    planner = RulePlanner()
    prompt = PROMPTS[1]
    assert planner.plan(prompt, seed=3) == planner.plan(prompt, seed=3)
    distinct = {planner.plan(prompt, seed=s).boxes for s in range(12)}
    assert len(distinct) >= 6


def test_reading_order_is_top_to_bottom_and_title_is_largest():
    planner = RulePlanner()
    for seed in range(10):
        layout = planner.plan(PROMPTS[1], seed=seed)
        assert layout.texts == ["BLUE NOTE", "every friday at eight", "free entry"]
        tops = [b.box[1] for b in layout.boxes]
        assert tops == sorted(tops)
        sizes = [fit_text(b, 512, 512).size for b in layout.boxes]
        assert sizes[0] > max(sizes[1:]), sizes
        assert min(sizes) >= 18  # readable at 512x512


def test_margins_are_kept():
    layout = RulePlanner(RuleOptions(margin=0.1)).plan(PROMPTS[4], seed=0)
    for b in layout.boxes:
        x0, y0, x1, y1 = b.box
        assert min(x0, y0) >= 0.1 - 1e-9 and max(x1, y1) <= 0.9 + 1e-9


def test_long_text_is_broken_onto_lines_and_boxes_match_the_text_shape():
    layout = RulePlanner().plan(PROMPTS[2], seed=1)
    (box,) = layout.boxes
    fitted = fit_text(box, 512, 512)
    assert len(fitted.lines) >= 2
    assert fitted.size >= 30


@pytest.mark.parametrize("prompt", PROMPTS[:6])
def test_the_glyph_renderer_fills_the_planned_boxes(prompt):
    layout = RulePlanner().plan(prompt, seed=2)
    for box in layout.boxes:
        single = Layout(512, 512, (box,))
        mask = np.asarray(render_glyph(single, mask=True)) > 0
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = box.to_pixels(512, 512)
        fill_w = (xs.max() - xs.min() + 1) / (x1 - x0)
        fill_h = (ys.max() - ys.min() + 1) / (y1 - y0)
        # The binding dimension is filled up to the padding; the text never needs to shrink to fit.
        assert max(fill_w, fill_h) >= 0.85, (box.text, fill_w, fill_h)


def test_cjk_text_is_measured_in_its_own_font():
    layout = RulePlanner().plan("a sign 「欢迎光临本店」", seed=0)
    (box,) = layout.boxes
    fitted = fit_text(box, 512, 512)
    assert fitted.font.name.startswith("noto-sans-cjk")
    assert fitted.size >= 60  # a title-sized font: the box has the shape of the CJK lines, not of Latin ones


def test_no_texts_give_an_empty_layout():
    layout = RulePlanner().plan("a photo of a cat", width=300, height=200)
    assert layout.boxes == () and layout.size == (300, 200) and layout.caption == "a photo of a cat"
    assert RulePlanner().plan('a "SALE" sign', texts=[]).boxes == ()


def test_explicit_texts_and_batches():
    planner = RulePlanner()
    assert planner.plan('a "SALE" sign', texts=["OPEN", "NOW"]).texts == ["OPEN", "NOW"]
    batch = planner.plan_batch(['a "A" sign', 'a "B" sign'], seed=[1, 2])
    assert batch == [planner.plan('a "A" sign', seed=1), planner.plan('a "B" sign', seed=2)]
    with pytest.raises(ValueError, match="2 prompts but 1 texts"):
        planner.plan_batch(["a", "b"], texts=[None])


def test_bad_canvas_and_options_are_rejected():
    with pytest.raises(ValueError, match="canvas size"):
        RulePlanner().plan('a "X"', width=0)
    with pytest.raises(ValueError, match="styles"):
        RuleOptions(styles=("diagonal",))
    with pytest.raises(ValueError, match="anchors"):
        RuleOptions(anchors=(1.5,))


def test_place_missing_uses_free_space():
    planner = RulePlanner()
    base = Layout(512, 512, (TextBox("TOP", (0.1, 0.05, 0.9, 0.3)), TextBox("BOTTOM", (0.1, 0.7, 0.9, 0.95))))
    layout = planner.place_missing(base, ["middle text", "another one"], seed=0)
    assert sorted(layout.texts) == sorted(["TOP", "BOTTOM", "middle text", "another one"])
    assert overlapping_pairs(layout) == 0 and boxes_outside(layout) == 0
    tops = [b.box[1] for b in layout.boxes]
    assert tops == sorted(tops)


def test_place_missing_on_a_full_canvas_still_places_inside():
    full = Layout(256, 256, (TextBox("FULL", (0.0, 0.0, 1.0, 1.0)),))
    layout = RulePlanner().place_missing(full, ["extra"], seed=0)
    layout.validate()
    assert "extra" in layout.texts and boxes_outside(layout) == 0


def test_random_prompts_never_fail():
    rng = random.Random(0)
    alphabet = "abcXYZ 0123'\"“”「」-!?,."
    planner = RulePlanner()
    for i in range(300):
        prompt = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        w, h = rng.randint(16, 2048), rng.randint(16, 2048)
        layout = planner.plan(prompt, width=w, height=h, seed=i)
        layout.validate()
        assert boxes_outside(layout) == 0 and overlapping_pairs(layout) == 0


# ---------------------------------------------------------------------- boundaries (found by mutation testing)
def test_box_intersection_areas_hand_computed():
    from layout_model.rule import _intersection

    assert _intersection((0, 0, 10, 10), (5, 2, 20, 8)) == 5 * 6
    assert _intersection((5, 2, 20, 8), (0, 0, 10, 10)) == 30  # symmetric
    assert _intersection((0, 0, 4, 4), (1, 1, 3, 2)) == 2 * 1  # one inside the other
    assert _intersection((0, 0, 4, 4), (4, 0, 8, 4)) == 0.0  # touching edges share no area
    assert _intersection((0, 0, 4, 4), (6, 6, 9, 9)) == 0.0  # apart in both directions
    assert _intersection((2, 10, 30, 12), (0, 0, 40, 11)) == 28 * 1


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"min_height": 0.99}, True), ({"min_height": 1.0}, False), ({"min_height": 1.5}, False),
        ({"anchors": (0.0, 1.0)}, True), ({"anchors": (1.01,)}, False),
        ({"margin": 0.0}, True), ({"margin": 0.49}, True), ({"margin": 0.5}, False), ({"margin": 1.0}, False),
        ({"title_width": (0.0, 0.5)}, False), ({"title_width": (0.5, 0.5)}, True), ({"title_width": (0.5, 1.0)}, True),
        ({"title_width": (0.5, 1.5)}, False), ({"subtitle_ratio": (0.6, 0.4)}, False),
    ],
)  # fmt: skip
def test_rule_options_accept_their_documented_ranges_and_nothing_else(fields, ok):
    from layout_model.rule import RuleOptions

    if ok:
        RuleOptions(**fields)
    else:
        with pytest.raises(ValueError, match="RuleOptions"):
            RuleOptions(**fields)


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [(1, 1, True), (64, 1, True), (0, 5, False), (5, 0, False), (64.0, 64, False), (64, 64.0, False), (-3, 8, False)],
)
def test_canvas_size_must_be_positive_integers(width, height, ok):
    from layout_model.rule import _check_size

    if ok:
        _check_size(width, height)
    else:
        with pytest.raises(ValueError, match="positive integers"):
            _check_size(width, height)
