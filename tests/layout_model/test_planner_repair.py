import random

import pytest

from layout_model.metrics import answer_is_correct, boxes_outside, keyword_recall, overlapping_pairs
from layout_model.repair import RepairOptions, repair_answer
from layout_model.td2 import TD2_KEYWORDS_TEMPLATE, TD2_TEMPLATE, build_prompt, format_answer, parse_answer
from textgen.core.layout import Layout, TextBox


def test_td2_prompt_matches_textdiffuser2():
    prompt = build_prompt("a cake", TD2_TEMPLATE)
    assert prompt.startswith("Given a prompt that will be used to generate an image, plan the layout of visual text")
    assert prompt.endswith("So let us begin. Prompt: a cake")
    with_keywords = build_prompt("a cake", TD2_KEYWORDS_TEMPLATE, ["Happy", "Day"])
    assert with_keywords.endswith("Prompt: a cake. Keywords: ['Happy', 'Day']")
    assert build_prompt('a {curly} "X"', "{prompt}\n") == 'a {curly} "X"\n'
    with pytest.raises(ValueError, match="prompt"):
        build_prompt("x", "no field")


def test_answer_format_round_trips_through_the_parser():
    layout = Layout(
        512, 512, (TextBox("BLUE NOTE", (0.1, 0.1, 0.9, 0.3)), TextBox("two\nlines", (0.2, 0.5, 0.8, 0.7)))
    )
    answer = format_answer(layout)
    assert answer == "BLUE NOTE 13,13,115,38\ntwo lines 26,64,102,90"
    lines, problems = parse_answer(answer)
    assert problems == [] and [ln.keyword for ln in lines] == ["BLUE NOTE", "two lines"]
    assert lines[0].coords == (13, 13, 115, 38)


@pytest.mark.parametrize(
    ("line", "keyword", "coords"),
    [
        ("OPEN 1,2,3,4", "OPEN", (1, 2, 3, 4)),
        ("OPEN: [1, 2, 3, 4]", "OPEN", (1, 2, 3, 4)),
        ('"BLUE NOTE" (10, 20, 30, 40).', "BLUE NOTE", (10, 20, 30, 40)),
        ("- 24/7 5,6,7,8", "24/7", (5, 6, 7, 8)),
        ("1. SALE 5.6,6,7,8", "SALE", (5.6, 6, 7, 8)),
        ("Summer Vibe 20,20,100,40,20", "Summer Vibe", (20, 20, 100, 40)),  # TextDiffuser-2's angle extension
        ("neg -5,-3,200,140", "neg", (-5, -3, 200, 140)),
    ],
)
def test_parser_reads_common_variations(line, keyword, coords):
    (parsed,), problems = parse_answer(line)
    assert problems == [] and parsed.keyword == keyword and parsed.coords == coords


def test_parser_reports_unreadable_lines():
    lines, problems = parse_answer("garbage\nOPEN 1,2,3\n 1,2,3,4\nOK 1,2,3,4\n\n")
    assert [ln.keyword for ln in lines] == ["OK"]
    assert problems[0].startswith("line 1: expected 'keyword l,t,r,b'")
    assert problems[1].startswith("line 2") and problems[2].startswith("line 3")


def _repair(answer, expected, **kwargs):
    return repair_answer(answer, expected, 512, 512, caption="c", **kwargs)


def test_a_good_answer_is_used_as_is():
    layout, report = _repair("OPEN 16,16,112,48\nNOW 40,60,88,80", ["OPEN", "NOW"])
    assert report.used_model and report.repairs == [] and report.matched == 2
    assert layout.texts == ["OPEN", "NOW"] and layout.boxes[0].box == (0.125, 0.125, 0.875, 0.375)


def test_out_of_range_and_swapped_coordinates_are_fixed():
    layout, report = _repair("OPEN 120,-10,8,40\nNOW 40,140,88,100", ["OPEN", "NOW"])
    assert report.used_model
    assert layout.boxes[0].box == (8 / 128, 0.0, 120 / 128, 40 / 128)
    assert layout.boxes[1].box == (40 / 128, 100 / 128, 88 / 128, 1.0)
    assert any("swapped left and right" in r for r in report.repairs)
    assert any("clipped" in r for r in report.repairs)


def test_duplicates_unexpected_and_misspelt_keywords():
    answer = "BLUE NOTES 10,10,100,30\nBLUE NOTE 10,40,100,60\nBANANA 10,70,100,90\nnow 10,100,100,120"
    layout, report = _repair(answer, ["BLUE NOTE", "NOW"])
    assert layout.texts == ["BLUE NOTE", "NOW"]
    assert layout.boxes[0].box[1] == 10 / 128  # the first line, matched by spelling, wins
    assert any("fuzzy" in r for r in report.repairs)
    assert any("duplicate" in r for r in report.repairs)
    assert any("does not ask" in r for r in report.repairs)


def test_missing_keywords_are_added_in_free_space():
    answer = "OPEN 10,10,118,40\nbroken line\nNOW 30,50,90,70"
    layout, report = _repair(answer, ["OPEN", "NOW", "24/7", "today only"])
    assert report.used_model and report.problems
    assert sorted(layout.texts) == sorted(["OPEN", "NOW", "24/7", "today only"])
    assert layout.boxes[0].text == "OPEN" and layout.boxes[0].box == (10 / 128, 10 / 128, 118 / 128, 40 / 128)
    assert overlapping_pairs(layout) == 0 and boxes_outside(layout) == 0
    assert sum("added" in r for r in report.repairs) == 2


def test_overlapping_boxes_are_replaced():
    layout, report = _repair("A 10,10,100,60\nB 20,20,110,70", ["A", "B"])
    boxes = {b.text: b.box for b in layout.boxes}
    assert overlapping_pairs(layout) == 0 and boxes["A"] == (10 / 128, 10 / 128, 100 / 128, 60 / 128)
    assert any("covers the box of 'A'" in r for r in report.repairs)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "placed 0 of 2"),
        ("I'm sorry, I cannot plan layouts.", "placed 0 of 2"),
        ("OPEN 1,2,3", "placed 0 of 2"),
        ("OPEN 5,5,5,5\nNOW 0,0,0,90", "placed 0 of 2"),  # degenerate boxes
        ("OTHER 10,10,100,50", "placed 0 of 2"),
    ],
)
def test_unusable_answers_fall_back_with_a_reason(answer, reason):
    layout, report = _repair(answer, ["OPEN", "NOW"])
    assert layout is None and reason in report.fallback


def test_min_matched_threshold():
    answer = "OPEN 10,10,100,50"
    assert _repair(answer, ["OPEN", "A", "B"])[0] is None
    layout, _ = _repair(answer, ["OPEN", "A", "B"], options=RepairOptions(min_matched=0.3))
    assert sorted(layout.texts) == ["A", "B", "OPEN"]


def test_free_keywords_keep_the_models_texts():
    layout, report = _repair("HELLO 10,10,100,50\nHELLO 10,60,100,90\nWORLD 10,100,100,120", None)
    assert layout.texts == ["HELLO", "WORLD"] and report.used_model
    assert _repair("nothing here", None)[0] is None


def test_random_garbage_never_crashes_and_always_yields_valid_layouts():
    rng = random.Random(0)
    words = ["OPEN", "NOW", "24/7", "open", "N0W", "", "x", "\ufffd", '"OPEN"']
    noise = [" ", ",", "-", "999", "12", "0", "[", "]", ":", "1.5", "\n"]

    def number():
        return str(rng.choice([rng.randint(-50, 200), rng.randint(0, 128), round(rng.random() * 128, 1)]))

    def line():
        if rng.random() < 0.3:
            return "".join(rng.choice(noise) for _ in range(rng.randint(0, 12)))
        coords = ",".join(number() for _ in range(rng.choice([2, 3, 4, 4, 4, 5])))
        text = f"{rng.choice(words)} {coords}"
        return text[: rng.randint(3, 20)] if rng.random() < 0.2 else text  # a partial line

    expected = ["OPEN", "NOW", "24/7"]
    used = 0
    for _ in range(400):
        answer = "\n".join(line() for _ in range(rng.randint(0, 6)))
        layout, report = _repair(answer, expected)
        if layout is None:
            assert report.fallback
            continue
        used += 1
        layout.validate()
        assert keyword_recall(layout, expected) == 1.0 and boxes_outside(layout) == 0
    assert used > 0  # some of the garbage was salvageable


def test_answer_is_correct_is_strict():
    assert answer_is_correct("OPEN 1,2,3,4\nNOW 5,6,7,8", ["NOW", "OPEN"])
    assert not answer_is_correct("OPEN 1,2,3,4", ["NOW", "OPEN"])
    assert not answer_is_correct("OPEN 1,2,3,4\nOPEN 1,2,3,4", ["OPEN"])
    assert not answer_is_correct("OPEN 3,2,1,4", ["OPEN"])  # swapped corners
    assert not answer_is_correct("OPEN 1,2,3,400", ["OPEN"])
    assert not answer_is_correct("OPEN 1,2,3,4\njunk", ["OPEN"])


def test_slight_overlaps_are_trimmed_off_the_later_box():
    layout, report = _repair("A 10,10,100,60\nB 98,10,125,60", ["A", "B"])
    boxes = {b.text: b.box for b in layout.boxes}
    assert boxes["A"] == (10 / 128, 10 / 128, 100 / 128, 60 / 128)
    assert boxes["B"] == (100 / 128, 10 / 128, 125 / 128, 60 / 128)
    assert overlapping_pairs(layout) == 0 and any("trimmed" in r for r in report.repairs)


def test_boxes_too_small_for_their_text_are_re_placed():
    # A long text squeezed into a 2x2 grid-cell box would be a few pixels high.
    layout, report = _repair(
        "SHORT 10,10,100,60\nA MUCH LONGER SUBTITLE 10,70,12,72", ["SHORT", "A MUCH LONGER SUBTITLE"]
    )
    assert any("would be" in r for r in report.repairs)
    long_box = next(b for b in layout.boxes if b.text == "A MUCH LONGER SUBTITLE")
    assert long_box.width > 0.2 and overlapping_pairs(layout) == 0
