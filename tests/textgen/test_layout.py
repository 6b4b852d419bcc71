import json
import math

import pytest

from layout_model.td2 import parse_answer
from textgen.core.layout import Layout, LayoutError, TextBox


def _layout() -> Layout:
    return Layout(
        width=640,
        height=480,
        caption="a jazz poster",
        boxes=(
            TextBox("BLUE NOTE", (0.1, 0.05, 0.9, 0.3), font="noto-sans-bold", color="#1e3a8a"),
            TextBox("Friday 9 pm", (0.25, 0.4, 0.75, 0.5), angle=12.5, language="en"),
            TextBox("爵士之夜", (0.3, 0.6, 0.7, 0.8), language="zh"),
        ),
    )


def test_json_round_trip_is_lossless():
    layout = _layout()
    again = Layout.from_json(layout.to_json())
    assert again == layout
    assert json.loads(layout.to_json())["boxes"][2]["text"] == "爵士之夜"


def test_save_and_load(tmp_path):
    path = tmp_path / "l.json"
    _layout().save(path)
    assert Layout.load(path) == _layout()


def test_pixel_conversion_round_trip():
    layout = _layout()
    pixels = layout.pixel_boxes()
    assert pixels[0] == (64, 24, 576, 144)
    back = Layout.from_pixels(zip(layout.texts, pixels), width=640, height=480)
    for a, b in zip(back.boxes, layout.boxes):
        assert all(abs(x - y) <= 1 / 480 for x, y in zip(a.box, b.box))


def test_resized_keeps_normalised_boxes():
    small = _layout().resized(128, 96)
    assert small.boxes == _layout().boxes
    assert small.pixel_boxes()[0] == (13, 5, 115, 29)


def test_td2_round_trip_on_the_128_grid():
    layout = Layout(
        512, 512, (TextBox("Summer Sale", (0.125, 0.0625, 0.875, 0.25)), TextBox("50%", (0.5, 0.5, 0.75, 0.625)))
    )
    text = layout.to_td2()
    assert text.splitlines() == ["Summer Sale 16,8,112,32", "50% 64,64,96,80"]
    lines, problems = parse_answer(text)  # the one TD2 reader
    assert not problems and [line.keyword for line in lines] == ["Summer Sale", "50%"]
    assert lines[0].coords == (16, 8, 112, 32)


def test_td2_parse_reports_malformed_lines():
    lines, problems = parse_answer("OPEN 1,2,30,40\ngarbage\nSALE 1,2,x,4\n\nNOW 5,6,7,8")
    assert [line.keyword for line in lines] == ["OPEN", "NOW"]
    assert problems[0].startswith("line 2:") and problems[1].startswith("line 3:")


@pytest.mark.parametrize(
    ("box", "text", "angle", "font", "color", "message"),
    [
        ((0.5, 0.1, 0.2, 0.3), "A", 0.0, None, None, r"box 0 \('A'\): 'box' .* has x1 <= x0"),
        ((0.1, 0.5, 0.2, 0.3), "A", 0.0, None, None, r"has y1 <= y0"),
        ((0.1, 0.1, 1.2, 0.3), "A", 0.0, None, None, r"outside the canvas"),
        ((-0.1, 0.1, 0.2, 0.3), "A", 0.0, None, None, r"outside the canvas"),
        ((0.1, math.nan, 0.2, 0.3), "A", 0.0, None, None, r"NaN"),
        ((0.1, 0.1, 0.2, 0.3), "  ", 0.0, None, None, r"box 0 \('  '\): 'text' is empty"),
        ((0.1, 0.1, 0.2, 0.3), "A", math.inf, None, None, r"'angle' must be finite"),
        ((0.1, 0.1, 0.2, 0.3), "A", 0.0, "no-such-font", None, r"'font' unknown font 'no-such-font'"),
        ((0.1, 0.1, 0.2, 0.3), "A", 0.0, "/missing/font.ttf", None, r"does not exist"),
        ((0.1, 0.1, 0.2, 0.3), "A", 0.0, None, "notacolour", r"'color' 'notacolour' is not a colour"),
    ],
)
def test_validate_names_box_and_field(box, text, angle, font, color, message):
    layout = Layout(512, 512, (TextBox(text, box, angle=angle, font=font, color=color),))
    with pytest.raises(LayoutError, match=message):
        layout.validate()


def test_validate_names_the_right_box():
    layout = Layout(512, 512, (TextBox("ok", (0.1, 0.1, 0.2, 0.2)), TextBox("bad", (0.3, 0.3, 0.2, 0.4))))
    with pytest.raises(LayoutError, match=r"box 1 \('bad'\)"):
        layout.validate()


def test_validate_rejects_bad_canvas():
    with pytest.raises(LayoutError, match="canvas size"):
        Layout(0, 512, ()).validate()


def test_valid_layout_passes_and_chains():
    assert _layout().validate() == _layout()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"boxes": {"a": 1}}', "'boxes' must be a list"),
        ('{"boxes": [{"box": [0, 0, 1, 1]}]}', "box 0: missing field 'text'"),
        ('{"boxes": [{"text": "A", "box": [0, 0, 1]}]}', r"box 0: 'box' must be \[x0, y0, x1, y1\]"),
        ('{"boxes": [{"text": "A", "box": [0, 0, 1, 1], "colour": "red"}]}', r"unknown field\(s\) \['colour'\]"),
        ('{"boxes": [{"text": 5, "box": [0, 0, 1, 1]}]}', "'text' must be a string"),
    ],
)
def test_from_json_errors_name_source_and_field(payload, message):
    with pytest.raises(LayoutError, match=message) as info:
        Layout.from_json(payload, source="poster.json")
    assert str(info.value).startswith("poster.json")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such layout file"):
        Layout.load(tmp_path / "nope.json")
