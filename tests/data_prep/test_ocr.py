"""OCR engines on rendered glyph images: what they read, where, and the layout and batch forms of the result."""

import math

import numpy as np
import pytest
from PIL import Image

from textgen.core.glyph import render_glyph
from textgen.core.layout import Layout, TextBox
from textgen.core.ocr import (
    DEFAULT_ENGINE,
    OCRError,
    get_engine,
    ocr_to_layout,
    polygon_angle,
    read_text,
    sort_reading_order,
    split_words,
    to_rgb,
)
from textgen.core.ocr_engines import EasyOCREngine, RapidOCREngine
from textgen.core.shards import OCRBox

POSTER = Layout(
    320,
    320,
    (
        TextBox("OPEN", (0.1, 0.05, 0.9, 0.3)),
        TextBox("$9.99", (0.15, 0.4, 0.85, 0.6)),
        TextBox("Summer Sale", (0.05, 0.7, 0.95, 0.9)),
    ),
)


@pytest.fixture(scope="module")
def rapid():
    return RapidOCREngine(threads=1)


@pytest.fixture(scope="module")
def poster_boxes(rapid):
    return rapid.read(render_glyph(POSTER))


def _center_inside(box, pixel_box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return pixel_box[0] <= cx <= pixel_box[2] and pixel_box[1] <= cy <= pixel_box[3]


def test_rapidocr_reads_rendered_glyphs_where_they_are(poster_boxes):
    assert [b.text for b in poster_boxes] == ["OPEN", "$9.99", "Summer Sale"]
    for b, pixel_box in zip(poster_boxes, POSTER.pixel_boxes()):
        assert _center_inside(b.box, pixel_box)


def test_ocr_box_fields_are_sane(poster_boxes):
    for b in poster_boxes:
        assert len(b.polygon) == 4
        xs, ys = [p[0] for p in b.polygon], [p[1] for p in b.polygon]
        assert b.box == (min(xs), min(ys), max(xs), max(ys))
        assert -2 <= b.box[0] < b.box[2] <= 322 and -2 <= b.box[1] < b.box[3] <= 322
        assert 0.9 <= b.confidence <= 1.0  # clean black-on-white text
        assert b.language == "en"
        assert OCRBox.from_dict(b.to_dict()) == b


def test_read_batch_equals_read(rapid, poster_boxes):
    blank = Image.new("RGB", (64, 64), "white")
    batch = rapid.read_batch([render_glyph(POSTER), blank])
    assert batch == [poster_boxes, []]


def test_reading_order_is_top_to_bottom_left_to_right(rapid):
    # Boxes listed out of reading order in the layout; the engine's output must not depend on it.
    layout = Layout(
        400,
        240,
        (
            TextBox("RIGHT", (0.55, 0.6, 0.95, 0.85)),
            TextBox("TOP", (0.3, 0.08, 0.7, 0.35)),
            TextBox("LEFT", (0.05, 0.6, 0.45, 0.85)),
        ),
    )
    assert read_text(render_glyph(layout), engine=rapid) == "TOP LEFT RIGHT"


def test_read_text_default_engine_is_built_once():
    image = render_glyph(Layout(256, 128, (TextBox("HELLO", (0.1, 0.1, 0.9, 0.9)),)))
    assert read_text(image) == "HELLO"
    assert read_text(image) == "HELLO"
    from textgen.core.ocr import _shared_default_engine

    assert _shared_default_engine.cache_info().misses == 1
    assert isinstance(_shared_default_engine(("en",)), RapidOCREngine) and DEFAULT_ENGINE == "rapidocr"


def test_rotated_text_gives_a_counter_clockwise_angle(rapid):
    layout = Layout(320, 320, (TextBox("WELCOME", (0.05, 0.2, 0.95, 0.8), angle=15),))
    boxes = rapid.read(render_glyph(layout))
    assert [b.text for b in boxes] == ["WELCOME"]
    angle = ocr_to_layout(boxes, 320, 320).boxes[0].angle
    assert 7 <= angle <= 22  # same sign convention as TextBox.angle (the detector's quad is a little loose)


def test_word_boxes_split_lines(poster_boxes):
    engine = RapidOCREngine(threads=1, word_boxes=True)
    words = engine.read(render_glyph(POSTER))
    assert [b.text for b in words] == ["OPEN", "$9.99", "Summer", "Sale"]
    summer, sale = words[2], words[3]
    assert summer.box[2] <= sale.box[0] + 2  # side by side, inside the line box
    line = poster_boxes[2].box
    assert line[0] - 3 <= summer.box[0] and sale.box[2] <= line[2] + 3


def test_chinese_and_english(tmp_path):
    engine = RapidOCREngine(languages=("zh", "en"), threads=1)
    layout = Layout(320, 200, (TextBox("欢迎光临", (0.1, 0.05, 0.9, 0.45)), TextBox("OPEN", (0.2, 0.55, 0.8, 0.95))))
    boxes = engine.read(render_glyph(layout))
    assert [(b.text, b.language) for b in boxes] == [("欢迎光临", "zh"), ("OPEN", "en")]


def test_rapidocr_never_downloads(tmp_path):
    with pytest.raises(OCRError, match=r"PP-OCRv6_det_small\.onnx.*model_dir"):
        RapidOCREngine(model_dir=tmp_path)  # an empty folder: rapidocr would fetch the files
    with pytest.raises(OCRError, match=r"PP-OCRv6_det_medium\.onnx.*offline"):
        RapidOCREngine(model_type="medium")  # not bundled in the wheel
    with pytest.raises(FileNotFoundError, match="not a folder"):
        RapidOCREngine(model_dir=tmp_path / "missing")


def test_get_engine_names():
    with pytest.raises(ValueError, match="unknown OCR engine 'tesseract'"):
        get_engine("tesseract")


# --------------------------------------------------------------------------------------------------- EasyOCR
@pytest.fixture(scope="module")
def easy():
    return EasyOCREngine(threads=1)


def test_easyocr_reads_english(easy):
    image = render_glyph(Layout(320, 160, (TextBox("HELLO", (0.1, 0.1, 0.9, 0.9)),)))
    boxes = easy.read(image)
    assert [b.text for b in boxes] == ["HELLO"]
    b = boxes[0]
    assert 0 <= b.confidence <= 1 and b.language == "en" and len(b.polygon) == 4
    assert _center_inside(b.box, (32, 16, 288, 144))


def test_easyocr_chinese_fails_clearly_without_weights():
    with pytest.raises(OCRError, match=r"zh_sim_g2\.pth.*model_dir=<folder>"):
        EasyOCREngine(languages=("zh", "en"))


# ------------------------------------------------------------------------------------------------ to layout
def _quad(cx, cy, w, h, angle_deg):
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    # counter-clockwise on screen (y down): x' = x c + y s, y' = -x s + y c
    return tuple((cx + x * c + y * s, cy - x * s + y * c) for x, y in corners)


def test_polygon_angle_convention():
    assert polygon_angle(_quad(50, 50, 40, 10, 0)) == pytest.approx(0)
    assert polygon_angle(_quad(50, 50, 40, 10, 20)) == pytest.approx(20)
    assert polygon_angle(_quad(50, 50, 40, 10, -35)) == pytest.approx(-35)


def test_ocr_to_layout_normalises_clips_and_keeps_language():
    poly = _quad(100, 50, 80, 20, 20)
    boxes = [
        OCRBox.from_polygon("TILTED", poly, 0.9, "en"),
        OCRBox.from_polygon("EDGE", ((180, 90), (230, 90), (230, 110), (180, 110)), 0.8, "en"),  # past the right
        OCRBox.from_polygon("AWAY", ((300, 10), (320, 10), (320, 20), (300, 20)), 0.8, "en"),  # off canvas
        OCRBox.from_polygon("  ", ((10, 10), (20, 10), (20, 20), (10, 20)), 0.8, "en"),  # no text
        {"text": "你好", "polygon": [[10, 150], [60, 151], [60, 180], [10, 179]], "confidence": 0.7, "language": "zh"},
    ]
    layout = ocr_to_layout(boxes, 200, 200, caption="a sign").validate()
    assert layout.caption == "a sign" and layout.size == (200, 200)
    assert layout.texts == ["TILTED", "EDGE", "你好"]
    tilted, edge, chinese = layout.boxes
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    assert tilted.box == pytest.approx((min(xs) / 200, min(ys) / 200, max(xs) / 200, max(ys) / 200))
    assert tilted.angle == pytest.approx(20, abs=0.01)
    assert edge.box == pytest.approx((0.9, 0.45, 1.0, 0.55))
    assert edge.angle == 0
    assert chinese.language == "zh" and chinese.angle == 0  # a 1-degree wobble is level text


def test_ocr_to_layout_round_trip_through_the_glyph_renderer(poster_boxes):
    layout = ocr_to_layout(poster_boxes, 320, 320)
    assert layout.texts == POSTER.texts
    # The OCR box hugs the ink (plus the detector's few pixels of padding), which render_glyph centred in the
    # original box.
    for got, want in zip(layout.boxes, POSTER.boxes):
        assert want.box[0] - 0.04 <= got.box[0] and got.box[2] <= want.box[2] + 0.04
        assert want.box[1] - 0.04 <= got.box[1] and got.box[3] <= want.box[3] + 0.04
        assert got.width > 0.3 * want.width and got.height > 0.3 * want.height


def test_split_words_cuts_a_line_quad():
    line = OCRBox.from_polygon("OPEN NOW", ((10, 10), (170, 10), (170, 40), (10, 40)), 0.9, "en")
    first, second = split_words(line)
    assert (first.text, second.text) == ("OPEN", "NOW")
    assert first.box[0] == 10 and second.box[2] == 170 and first.box[2] < second.box[0]
    assert first.box[1] == 10 and first.box[3] == 40
    assert split_words(first) == [first]


def test_sort_reading_order_groups_lines():
    def box(text, x0, y0, x1, y1):
        return OCRBox.from_polygon(text, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), 1.0)

    boxes = [box("c", 100, 52, 140, 70), box("a", 0, 0, 50, 20), box("d", 0, 50, 40, 72), box("b", 60, 3, 90, 22)]
    assert [b.text for b in sort_reading_order(boxes)] == ["a", "b", "d", "c"]


# ------------------------------------------------------------------------------------------------- images
def test_to_rgb_handles_odd_modes():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent shows as white
    deep = Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16))
    assert np.asarray(to_rgb(deep))[..., 0].tolist() == [[0, 64], [128, 255]]  # scaled, not clipped
    assert to_rgb(Image.new("CMYK", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(np.zeros((3, 5), np.uint8)).size == (5, 3)


# ------------------------------------------------------------------------------------------------- stage
