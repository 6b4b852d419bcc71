"""The Edit tab's actions (textgen.ui.editor.Editor): OCR's boxes as rows, checks, and an edit on a tiny model."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from textgen.core.fonts import get_font, resolve_font
from textgen.core.shards import OCRBox
from textgen.ui.editor import Editor, outline
from textgen.ui.studio import Studio, StudioOptions, UIError


def _sign(text="SALE", size=(160, 96)):
    image = Image.new("RGB", size, (250, 250, 245))
    ImageDraw.Draw(image).rectangle((0, 0, size[0] - 1, 14), fill=(200, 30, 30))  # a stripe to keep
    ImageDraw.Draw(image).text((18, 34), text, fill=(10, 10, 10), font=get_font(resolve_font("noto-sans-bold"), 34))
    return image


class FixedOCR:
    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def read(self, image):
        self.calls += 1
        return self.boxes


def _box(text, box):
    x0, y0, x1, y1 = box
    return OCRBox(text=text, polygon=((x0, y0), (x1, y0), (x1, y1), (x0, y1)), box=box, confidence=0.9)


@pytest.fixture()
def editor(tmp_path):
    return Editor(Studio(StudioOptions(device="cpu", output_dir=str(tmp_path))))


def test_find_text_reads_the_image_with_real_ocr(editor):
    rows, message = editor.find_text(_sign())
    assert [r[:2] for r in rows] == [["SALE", "SALE"]] and message.startswith("OCR found 1 text box")
    x0, y0, x1, y1 = rows[0][2:]
    assert 8 <= x0 < 30 and 25 <= y0 < 50 and 90 < x1 <= 130 and 60 < y1 <= 90  # around the drawn word


def test_find_text_on_a_blank_image_says_to_add_a_box(tmp_path):
    editor = Editor(Studio(StudioOptions(device="cpu", output_dir=str(tmp_path))), ocr_engine=FixedOCR([]))
    rows, message = editor.find_text(Image.new("RGB", (64, 64), "white"))
    assert rows == [] and "Add box" in message
    rows = editor.add_box(rows, Image.new("RGB", (100, 50), "white"))
    assert rows == [["", "TEXT", 30, 20, 70, 30]]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["SALE", "SALE", 10, 10, 50, 30]], "nothing to edit: change the new text"),
        ([["SALE", "", 10, 10, 50, 30]], "nothing to edit"),
        ([["SALE", "OPEN", 10, 10, 500, 30]], "row 1 ('OPEN'): box [10.0, 10.0, 500.0, 30.0] is empty or outside"),
        ([["SALE", "OPEN", 50, 10, 10, 30]], "is empty or outside the 160x96 image"),
        ([["SALE", "OPEN", "ten", 10, 50, 30]], "row 1, x0: expected a number of pixels, got 'ten'"),
        ([["SALE", "OPEN", 10]], "row 1: expected 6 cells"),
    ],
)
def test_bad_rows_are_messages_naming_the_row(editor, rows, message):
    with pytest.raises(UIError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        editor.edits(rows, (160, 96))


def test_only_changed_rows_are_edits(editor):
    rows = [["SALE", "OPEN", 10, 30, 120, 80], ["NOW", "NOW", 10, 80, 60, 95], ["", "NEW", 100, 5, 150, 20]]
    assert editor.edits(rows, (160, 96)) == [("OPEN", (10.0, 30.0, 120.0, 80.0)), ("NEW", (100.0, 5.0, 150.0, 20.0))]


def test_edit_without_an_image_or_with_bad_numbers_is_a_message(editor):
    with pytest.raises(UIError, match="upload an image to edit first"):
        editor.edit(None, [["A", "B", 0, 0, 5, 5]])
    with pytest.raises(UIError, match="best-of: expected a whole number in"):
        editor.edit(_sign(), [["SALE", "OPEN", 10, 30, 120, 80]], best_of=0)


def test_edit_repaints_only_the_box_and_writes_the_downloads(tmp_path):
    from tests.textgen.test_ui import _tiny_pipeline_folder

    model = _tiny_pipeline_folder(tmp_path / "tiny")
    ocr = FixedOCR([_box("OPEN", (10, 30, 120, 80))])
    studio = Studio(StudioOptions(device="cpu", output_dir=str(tmp_path / "out")))
    studio.pipelines.get(str(model))._ocr_engine = ocr
    editor = Editor(studio, ocr_engine=ocr)
    image = _sign()
    result = editor.edit(image, [["SALE", "OPEN", 10, 30, 120, 80]], model=str(model), steps=2, seed=3)
    before, after = np.asarray(image), np.asarray(result.after)
    changed = np.any(before != after, axis=-1)
    assert changed.any() and not changed[:20].any() and not changed[:, 140:].any()  # margins around the box kept
    assert result.reads == [("OPEN", "OPEN")] and "1 box edited" in result.message
    assert "OCR reads 1 of 1 as asked" in result.message
    assert [p.name for p in result.files] == ["edited.png", "original.png", "edits.json"]
    assert np.array_equal(np.asarray(Image.open(result.files[0])), after)
    assert result.before.getpixel((10, 50)) == (31, 111, 235)  # the edited box outlined in the "before"


def test_outline_draws_the_boxes():
    out = outline(Image.new("RGB", (50, 50), "white"), [(5, 5, 20, 20)])
    assert out.getpixel((5, 10)) == (31, 111, 235) and out.getpixel((30, 30)) == (255, 255, 255)
