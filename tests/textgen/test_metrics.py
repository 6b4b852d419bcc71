"""The paper metrics against hand-computed cases, including the papers' edge cases."""

import random

import numpy as np
import pytest

from textgen.core.colors import (
    BASIC_PALETTE,
    color_match,
    delta_e,
    estimate_colors,
    nearest_color,
    parse_color,
    resolve_color_name,
    srgb_to_lab,
)
from textgen.core.metrics import (
    best_first,
    edit_distance,
    f_measure,
    glyphcontrol_scores,
    join_detections,
    line_scores,
    mean,
    ned,
    normalize_spaces,
    ocr_score,
    reading_candidates,
    textdiffuser_scores,
    words_of,
)

# ------------------------------------------------------------------------------------------- edit distance


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("kitten", "sitting", 3),  # k->s, e->i, +g
        ("flaw", "lawn", 2),  # -f, +n
        ("", "abc", 3),
        ("abc", "", 3),
        ("", "", 0),
        ("OPEN", "OPEN", 0),
        ("OPEN", "open", 4),  # case counts
        ("SALE", "SALE!", 1),  # punctuation counts
        (["go", "go"], ["go"], 1),  # word sequences work too
    ],
)
def test_edit_distance_hand_computed(a, b, expected):
    assert edit_distance(a, b) == expected
    assert edit_distance(b, a) == expected


def test_edit_distance_agrees_with_rapidfuzz_on_random_strings():
    levenshtein = pytest.importorskip("rapidfuzz.distance").Levenshtein
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abAB c!") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abAB c!") for _ in range(rng.randint(0, 12)))
        assert edit_distance(a, b) == levenshtein.distance(a, b)


# ------------------------------------------------------------------------------------------------ AnyText


@pytest.mark.parametrize(
    "pred, target, expected",
    [
        ("OPEN", "OPEN", 1.0),
        ("OPFN", "OPEN", 0.75),  # 1 - 1/4
        ("", "OPEN", 0.0),  # empty OCR output
        ("", "", 1.0),
        ("open", "OPEN", 0.0),  # 4 substitutions out of 4: case is not forgiven
        ("OPEN!", "OPEN", 0.8),  # 1 - 1/5: the longer string is the denominator
        ("GO GO", "GO", 0.4),  # repeated word: 1 - 3/5
        ("STOP\nNOW", "STOP  NOW", 1.0),  # whitespace runs and line breaks are one space
    ],
)
def test_ned_hand_computed(pred, target, expected):
    assert ned(pred, target) == pytest.approx(expected)


def test_line_scores_are_case_sensitive_exact_matches_per_line():
    scores = line_scores(["OPEN", "Sale", "", " 24/7 "], ["OPEN", "SALE", "NOW", "24/7"])
    assert [s.exact for s in scores] == [True, False, False, True]
    assert [s.ned for s in scores] == pytest.approx([1.0, 0.25, 0.0, 1.0])
    assert scores[3].read == "24/7"  # ends stripped
    # Sentence Accuracy and NED of these four lines, as the report pools them:
    assert mean([s.exact for s in scores]) == 0.5
    assert mean([s.ned for s in scores]) == pytest.approx(0.5625)


def test_line_scores_extra_and_repeated_words_are_not_exact():
    scores = line_scores(["BIG SALE TODAY", "GO"], ["BIG SALE", "GO GO"])
    assert [s.exact for s in scores] == [False, False]
    assert scores[0].ned == pytest.approx(1 - 6 / 14)
    assert scores[1].ned == pytest.approx(1 - 3 / 5)


def test_line_scores_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 readings for 1 intended"):
        line_scores(["a", "b"], ["a"])


# ------------------------------------------------------------------------------------------- GlyphControl


def test_glyphcontrol_case_and_membership():
    (score,) = glyphcontrol_scores(["open"], ["OPEN"])
    assert (score.acc, score.acc_case_insensitive, score.ld) == (False, True, 4)
    # membership, not substring: "OPEN" is not one of the readings ["OPEN NOW"]
    (score,) = glyphcontrol_scores(["OPEN NOW"], ["OPEN"])
    assert (score.acc, score.ld, score.closest) == (False, 4, "OPEN NOW")


def test_glyphcontrol_empty_ocr_output():
    (score,) = glyphcontrol_scores([], ["SALE"])
    assert (score.acc, score.acc_case_insensitive, score.ld, score.detected) == (False, False, 4, False)


def test_glyphcontrol_multi_word_text_split_by_the_detector_still_matches():
    (score,) = glyphcontrol_scores(["STOP", "NOW"], ["STOP NOW"])
    assert score.acc and score.ld == 0
    # runs must be consecutive in reading order: "STOP X NOW" is closest (delete "X "), not a match
    (score,) = glyphcontrol_scores(["STOP", "X", "NOW"], ["STOP NOW"])
    assert (score.acc, score.ld, score.closest) == (False, 2, "STOP X NOW")


def test_glyphcontrol_extra_words_repeated_targets_and_punctuation():
    scores = glyphcontrol_scores(["SALE", "XYZ"], ["SALE", "SALE"])
    assert [s.acc for s in scores] == [True, True]  # extra words and repeats are not penalised (their convention)
    (score,) = glyphcontrol_scores(["SALE!"], ["SALE"])
    assert (score.acc, score.ld) == (False, 1)


def test_reading_candidates_are_consecutive_runs():
    assert reading_candidates(["a", "b", "c"]) == ["a", "a b", "a b c", "b", "b c", "c"]
    assert reading_candidates(["", "  "]) == []


# ------------------------------------------------------------------------------------------- TextDiffuser


def test_textdiffuser_hand_computed():
    # read: summer, sale!, go (3)   intended: summer, sale, go, go (4)   matched: summer, go (2)
    score = textdiffuser_scores(["Summer Sale!", "go"], ["summer sale", "go go"])
    assert score.matched == 2
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(2 / 4)
    assert score.f_measure == pytest.approx(4 / 7)
    assert not score.accuracy


def test_textdiffuser_edge_cases():
    empty = textdiffuser_scores([], ["open"])
    assert (empty.precision, empty.recall, empty.f_measure, empty.accuracy) == (0.0, 0.0, 0.0, False)
    case = textdiffuser_scores(["OPEN"], ["open"])
    assert (case.precision, case.recall, case.accuracy) == (1.0, 1.0, True)
    extra = textdiffuser_scores(["open", "now"], ["open"])
    assert (extra.precision, extra.recall, extra.accuracy) == (0.5, 1.0, False)
    order = textdiffuser_scores(["b a"], ["a", "b"])
    assert order.accuracy  # a bag of words: order does not matter
    repeated = textdiffuser_scores(["go"], ["go go"])
    assert (repeated.precision, repeated.recall, repeated.accuracy) == (1.0, 0.5, False)


def test_words_of_and_f_measure():
    assert words_of(["Big  SALE!", "\n24/7"]) == ["big", "sale!", "24/7"]
    assert f_measure(0.0, 0.0) == 0.0
    assert f_measure(0.75, 0.75) == pytest.approx(0.75)


# ------------------------------------------------------------------------------------------------ strings


def test_normalize_and_join():
    assert normalize_spaces("  a \n\t b ") == "a b"
    assert join_detections(["STOP", "", "NOW "]) == "STOP NOW"
    assert join_detections(["你好", "世界", "ok"]) == "你好世界 ok"  # no space between CJK characters
    assert join_detections([]) == ""


# ---------------------------------------------------------------------------------------------------- colour


def test_lab_reference_values():
    np.testing.assert_allclose(srgb_to_lab((255, 255, 255)), (100.0, 0.0, 0.0), atol=0.01)
    np.testing.assert_allclose(srgb_to_lab((0, 0, 0)), (0.0, 0.0, 0.0), atol=0.01)
    np.testing.assert_allclose(srgb_to_lab((255, 0, 0)), (53.24, 80.09, 67.20), atol=0.05)
    assert delta_e((10, 20, 30), (10, 20, 30)) == 0.0


def test_parse_color():
    assert parse_color("#ff0000") == (255, 0, 0)
    assert parse_color("navy") == (0, 0, 128)
    assert parse_color((300, -2, 7.6)) == (255, 0, 8)
    with pytest.raises(ValueError, match="'blurple' is not a colour"):
        parse_color("blurple")
    with pytest.raises(ValueError, match="triple"):
        parse_color((1, 2))


def test_nearest_and_resolved_names():
    assert nearest_color((250, 10, 10), BASIC_PALETTE)[0] == "red"
    assert nearest_color((20, 20, 20), BASIC_PALETTE)[0] == "black"
    assert resolve_color_name("Grey", BASIC_PALETTE) == ("gray", (128, 128, 128))
    assert resolve_color_name("#ff0000", BASIC_PALETTE)[0] == "red"  # the palette's exact colour takes its name
    assert resolve_color_name("navy", BASIC_PALETTE) == ("navy", (0, 0, 128))  # not in the palette: its own name


def test_color_match():
    palette = {"white": (245, 245, 242), "black": (22, 22, 24), "red": (210, 38, 38), "dark blue": (20, 32, 92)}
    assert color_match((30, 40, 100), "dark blue", palette).match
    assert not color_match((30, 40, 100), "black", palette).match
    assert color_match((205, 40, 45), "#d22626", palette).intended == ("red",)
    striped = color_match((240, 240, 240), ["red", "white"], palette)  # any of several intended colours
    assert striped.match and striped.nearest == "white"
    # an intended colour outside the palette joins it: navy-ish text matches "navy", not "blue"
    assert color_match((5, 5, 120), "navy", BASIC_PALETTE).match


def _poster(text_rgb, bg_rgb, offset=0):
    """20x40 image: background, a 'stroke' rectangle of text colour; the mask may be misaligned by ``offset``."""
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:] = bg_rgb
    image[6:14, 8:30] = text_rgb
    mask = np.zeros((20, 40), dtype=bool)
    mask[6 + offset : 14 + offset, 8 + offset : 30 + offset] = True
    return image, mask


def test_estimate_colors_text_and_background():
    image, mask = _poster((200, 30, 30), (20, 40, 200))
    text, background = estimate_colors(image, mask, [(4, 3, 34, 17)])
    assert text == [(200, 30, 30)] and background == (20, 40, 200)


def test_estimate_colors_tolerates_a_misaligned_glyph():
    image, mask = _poster((200, 30, 30), (20, 40, 200), offset=2)
    (text,), _ = estimate_colors(image, mask, [(4, 2, 36, 19)])
    assert text == (200, 30, 30)


def test_estimate_colors_when_no_text_was_painted_reads_the_background():
    image, mask = _poster((20, 40, 200), (20, 40, 200))
    (text,), background = estimate_colors(image, mask, [(4, 3, 34, 17)])
    assert text == background == (20, 40, 200)  # so a non-background intended colour will not match


def test_estimate_colors_empty_box_and_bad_shapes():
    image, mask = _poster((0, 0, 0), (255, 255, 255))
    texts, _ = estimate_colors(image, np.zeros_like(mask), [(4, 3, 34, 17), (10, 10, 10, 12)])
    assert texts == [None, None]
    with pytest.raises(ValueError, match="does not match"):
        estimate_colors(image, mask[:10], [])
    with pytest.raises(ValueError, match="HxWx3"):
        estimate_colors(image[..., 0], mask, [])


def test_mean_of_nothing_is_none():
    assert mean([]) is None
    assert mean([True, False, True, True]) == 0.75


def test_ocr_score_is_the_mean_ned_over_boxes_not_the_max_or_the_first():
    targets = ["SALE", "TODAY", "50% OFF"]
    reads = ["SALE", "TODAX", ""]  # 1.0, 0.8, 0.0: mean 0.6, max 1.0, first 1.0
    assert ocr_score(reads, targets) == pytest.approx(0.6)
    assert ocr_score(["SALE"], ["SALE"]) == 1.0 and ocr_score([], []) == 0.0
    assert ocr_score(["sale"], ["SALE"]) == 0.0  # case counts
    with pytest.raises(ValueError, match="2 readings for 3 boxes"):
        ocr_score(["A", "B"], targets)


def test_best_first_orders_high_to_low_and_keeps_ties_in_generation_order():
    assert best_first([0.2, 0.9, 0.5]) == [1, 2, 0]
    assert best_first([0.5, 0.9, 0.5, 0.9]) == [1, 3, 0, 2]
    assert best_first([]) == [] and best_first([0.3]) == [0]


def test_score_records_keep_what_was_compared():
    """Every field of the per-line and per-image records (reports show them), found by mutation testing."""
    line = line_scores(["SALE"], ["SALE"])[0]
    assert (line.target, line.read, line.exact, line.ned) == ("SALE", "SALE", True, 1.0)
    nothing = glyphcontrol_scores([], ["OPEN"])[0]
    assert (nothing.closest, nothing.ld, nothing.detected) == ("", 4, False)
    words = textdiffuser_scores(["big SALE"], ["SALE today"])
    assert words.read == ("big", "sale") and words.intended == ("sale", "today") and words.matched == 1  # lower-cased
    assert words.precision == 0.5 and words.recall == 0.5 and words.f_measure == pytest.approx(0.5)
    empty = textdiffuser_scores(["x"], [])
    assert empty.recall == 0.0 and empty.precision == 0.0


def test_f_measure_of_low_precision_and_recall():
    assert f_measure(0.3, 0.4) == pytest.approx(2 * 0.12 / 0.7)  # P + R below 1 is still a real F-measure
    assert f_measure(0.0, 0.0) == 0.0 and f_measure(1.0, 1.0) == 1.0
