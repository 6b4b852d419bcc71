"""Box and sample filters: each one configurable, each counted by its reason."""

from __future__ import annotations

import json

import pytest

from data_prep.filters import FilterOptions, FilterStage, filter_boxes, garbage_reason, script_language, text_height
from textgen.core.shards import OCRBox


def box(text: str, y0: float = 100, height: float = 30, conf: float = 0.9, lang: str | None = "en") -> OCRBox:
    return OCRBox.from_polygon(text, [(100, y0), (300, y0), (300, y0 + height), (100, y0 + height)], conf, lang)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("OPEN", None),
        ("24/7", None),
        ("A", None),
        ("营业", None),
        ("$9.99", None),
        ("00", None),
        ("", "empty"),
        ("   ", "empty"),
        ("---", "no letter or digit"),
        ("→", "no letter or digit"),
        ("...", "no letter or digit"),
        ("lll", "one repeated character"),
        ("0 0 0 0", "one repeated character"),
    ],
)
def test_garbage_reason(text, reason):
    assert garbage_reason(text) == reason


def test_script_language_reads_the_characters_not_the_engine_tag():
    assert script_language("OPEN", "en") == "en"
    assert script_language("面", "en") == "zh"  # an English engine returning a Han character
    assert script_language("カフェ") == "ja"
    assert script_language("서울") == "ko"
    assert script_language("Straße", "de") == "de"
    assert script_language("Москва") == "other"
    assert script_language("Москва", "ru") == "ru"
    assert script_language("SALE", "zh") == "en"


def test_text_height_is_the_short_side_of_a_rotated_quad():
    level = box("WORD", height=20)
    assert text_height(level) == pytest.approx(20)
    # the same 200x20 word turned 30 degrees: the axis-aligned box is ~110 px tall, the text still 20
    import math

    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    corners = [(-100, -10), (100, -10), (100, 10), (-100, 10)]
    polygon = [(400 + x * c + y * s, 400 - x * s + y * c) for x, y in corners]
    turned = OCRBox.from_polygon("WORD", polygon, 0.9)
    assert turned.box[3] - turned.box[1] > 100
    assert text_height(turned) == pytest.approx(20)


def test_each_box_filter_counts_its_reason():
    boxes = [
        box("OPEN"),
        box("---"),
        box("SALE", conf=0.3),
        box("tiny", height=4),
        box("面", lang="en"),
        box("24/7", y0=200),
    ]
    result = filter_boxes(boxes, 640, 480, FilterOptions(languages=("en",)))
    assert [b.text for b in result.boxes] == ["OPEN", "24/7"]
    assert result.dropped == {"box_garbage": 1, "box_low_confidence": 1, "box_too_small": 1, "box_language": 1}
    assert result.reject is None

    loose = filter_boxes(boxes, 640, 480, FilterOptions(min_confidence=0.0, min_text_height=0.0, drop_garbage=False))
    assert [b.text for b in loose.boxes] == ["OPEN", "---", "SALE", "tiny", "面", "24/7"] and loose.dropped == {}


def test_min_text_height_is_relative_to_the_shorter_image_side():
    word = box("WORD", height=10)
    assert filter_boxes([word], 2000, 600, FilterOptions(min_text_height=0.015)).boxes  # 10 >= 9 px
    assert not filter_boxes([word], 2000, 800, FilterOptions(min_text_height=0.015)).boxes  # 10 < 12 px


def test_sample_filters():
    opts = FilterOptions()
    nothing = filter_boxes([], 640, 480, opts)
    assert (nothing.reject, nothing.boxes) == ("no_text", [])
    all_dropped = filter_boxes([box("...")], 640, 480, opts)
    assert all_dropped.reject == "no_kept_text" and all_dropped.dropped == {"box_garbage": 1}
    assert filter_boxes([], 640, 480, FilterOptions(keep_no_text=True)).reject is None

    many = [box(f"W{i}", y0=10 + 20 * i, height=15) for i in range(21)]
    assert filter_boxes(many, 640, 480, opts).reject == "too_many_boxes"  # GlyphDraw2: at most 20
    assert filter_boxes(many[:20], 640, 480, opts).reject is None
    assert filter_boxes(many, 640, 480, FilterOptions(max_boxes=30)).reject is None

    one = [box("WORD")]  # 200x30 px on 640x480: 1.95% of the image
    assert filter_boxes(one, 640, 480, FilterOptions(min_text_area=0.01)).reject is None
    small = filter_boxes(one, 640, 480, FilterOptions(min_text_area=0.05))
    assert small.reject == "text_area_too_small" and "0.0195" in small.detail


def test_options_are_validated():
    for bad in (
        {"min_confidence": 1.5},
        {"min_text_height": -0.1},
        {"max_boxes": 0},
        {"languages": ()},
        {"min_text_area": 1.0},
    ):
        field = next(iter(bad))
        with pytest.raises(ValueError, match=field):
            FilterOptions(**bad).validate()


def test_filter_stage_updates_rows_and_skips_rejected_ones():
    rows = {
        "key": ["a", "b", "c"],
        "reject": ["", "", "truncated"],
        "detail": ["", "", "cut"],
        "width": [640, 640, 0],
        "height": [480, 480, 0],
        "image": [b"img", b"img", b""],
        "ocr": [
            json.dumps([box("OPEN").to_dict(), box("SALE", conf=0.1).to_dict()]),
            json.dumps([box("~~~").to_dict()]),
            "[]",
        ],
        "dropped": ["{}", "{}", "{}"],
        "seconds": ["{}", "{}", "{}"],
    }
    out = FilterStage()(rows)
    assert [b["text"] for b in json.loads(out["ocr"][0])] == ["OPEN"]
    assert json.loads(out["dropped"][0]) == {"box_low_confidence": 1}
    assert out["reject"] == ["", "no_kept_text", "truncated"]
    assert out["image"] == [b"img", b"", b""]  # a rejected row does not carry its image further
    assert "filter" in json.loads(out["seconds"][0])
