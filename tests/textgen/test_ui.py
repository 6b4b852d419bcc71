"""textgen ui: the layout table, the page's actions, the Gradio app, and the page driven in headless Chromium."""

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from textgen.cli import main as cli_main
from textgen.core.fonts import get_font, resolve_font
from textgen.core.layout import Layout, TextBox
from textgen.core.shards import OCRBox
from textgen.ui.studio import (
    SHIPPED,
    Generation,
    Studio,
    StudioOptions,
    UIError,
    friendly_error,
    model_defaults,
    resolve_model_choice,
)
from textgen.ui.table import (
    CanvasSize,
    TableError,
    delete_row,
    layout_to_rows,
    move_row,
    new_row,
    normalise_rows,
    rows_to_layout,
)

CANVAS = CanvasSize(512, 256)
ROWS = [
    ["BLUE NOTE", 51.2, 25.6, 460.8, 102.4, 0, "league-spartan", "#1e3a8a"],
    ["friday 9pm", 256, 179.2, 486.4, 243.2, 8, "", ""],
]


# ------------------------------------------------------------------------------------------------------ table
def test_rows_round_trip_through_a_layout():
    layout = rows_to_layout(ROWS, CANVAS, caption="a jazz poster")
    assert layout.size == (512, 256) and layout.caption == "a jazz poster"
    first, second = layout.boxes
    assert first.box == pytest.approx((0.1, 0.1, 0.9, 0.4))
    assert (first.font, first.color, first.angle) == ("league-spartan", "#1e3a8a", 0.0)
    assert (second.font, second.color, second.angle) == (None, None, 8.0)
    assert layout_to_rows(layout) == ROWS


def test_layout_to_rows_scales_to_another_canvas():
    layout = Layout(100, 100, (TextBox("OPEN", (0.25, 0.5, 0.75, 1.0)),))
    assert layout_to_rows(layout, CanvasSize(400, 200)) == [["OPEN", 100, 100, 300, 200, 0, "", ""]]


def test_cells_may_arrive_as_strings_and_blank_rows_are_ignored():
    rows = [["OPEN", "10", " 20 ", "110", "60", "", None, None], ["", None, "", None, None, None, None, None]]
    layout = rows_to_layout(rows, CANVAS)
    assert layout.texts == ["OPEN"] and layout.boxes[0].angle == 0.0
    assert layout.boxes[0].to_pixels(512, 256) == (10, 20, 110, 60)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (["", 10, 10, 50, 50, 0, "", ""], "row 2, text: is empty"),
        (["A", "ten", 10, 50, 50, 0, "", ""], "row 2 ('A'), x0: expected a number of pixels, got 'ten'"),
        (["A", 10, None, 50, 50, 0, "", ""], "row 2 ('A'), y0: expected a number of pixels, got None"),
        (["A", 60, 10, 50, 50, 0, "", ""], "row 2 ('A'), x1: must be greater than x0 (got x0=60, x1=50)"),
        (["A", 10, 50, 50, 50, 0, "", ""], "row 2 ('A'), y1: must be greater than y0 (got y0=50, y1=50)"),
        (["A", -1, 10, 50, 50, 0, "", ""], "row 2 ('A'), x0: -1 lies outside the canvas (expected 0 to 512)"),
        (["A", 10, 10, 50, 300, 0, "", ""], "row 2 ('A'), y1: 300 lies outside the canvas (expected 0 to 256)"),
        (["A", 10, 10, 50, 50, "nan", "", ""], "row 2 ('A'), angle: expected a number of pixels, got 'nan'"),
        (["A", 10, 10, 50, 50, 0, "comic-sans", ""], "row 2 ('A'), font: unknown font 'comic-sans'"),
        (["A", 10, 10, 50, 50, 0, "", "#12345"], "row 2 ('A'), color: '#12345' is not a colour"),
        (["A\U0001f600", 10, 10, 50, 50, 0, "", ""], "row 2 ('A\U0001f600'), text: "),
    ],
)
def test_bad_cells_name_the_row_and_the_column(row, expected):
    with pytest.raises(TableError) as err:
        rows_to_layout([ROWS[0], row], CANVAS)
    assert str(err.value).startswith(expected)


def test_canvas_size_is_checked():
    assert CanvasSize.parse("640", 480.0) == CanvasSize(640, 480)
    for width, height in [(0, 512), (512.5, 512), ("wide", 512), (512, 99999)]:
        with pytest.raises(TableError, match="canvas (width|height): expected a whole number of pixels"):
            CanvasSize.parse(width, height)


def test_normalise_rows_accepts_the_shapes_a_table_widget_sends():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(ROWS, columns=["text", "x0", "y0", "x1", "y1", "angle", "font", "color"])
    assert normalise_rows(frame) == ROWS
    assert normalise_rows({"data": ROWS, "headers": []}) == ROWS
    assert normalise_rows([["OPEN", 1, 2, 3, 4]]) == [["OPEN", 1, 2, 3, 4, None, None, None]]
    assert normalise_rows(None) == []


def test_add_delete_and_drag_rows():
    rows = new_row(ROWS, CANVAS)
    assert rows[-1] == ["TEXT", 128, 106.7, 384, 149.3, 0, "", ""] and rows_to_layout(rows, CANVAS)
    assert delete_row(rows, 0) == [ROWS[1], rows[-1]]
    assert delete_row(rows, None) == ROWS
    with pytest.raises(TableError, match="row 9: no such row"):
        delete_row(rows, 8)
    with pytest.raises(TableError, match="no rows to delete"):
        delete_row([], None)
    moved = move_row(ROWS, 1, [300.4, 100, 600, 200.6], CANVAS)  # dragged past the right edge: kept on the canvas
    assert moved[1][1:5] == [300, 100, 512, 201] and moved[0] == ROWS[0]
    with pytest.raises(TableError, match="four numbers"):
        move_row(ROWS, 0, [1, 2, 3], CANVAS)


# ----------------------------------------------------------------------------------------------- the actions
@pytest.fixture
def studio(tmp_path):
    return Studio(StudioOptions(output_dir=str(tmp_path / "out"), device="cpu"))


def test_plan_places_the_quoted_words_and_renders_them(studio):
    rows, preview = studio.plan('A jazz poster that says "BLUE NOTE" and "FRIDAY"', 512, 512, seed=0)
    assert [row[0] for row in rows] == ["BLUE NOTE", "FRIDAY"]
    assert preview.layout.texts == ["BLUE NOTE", "FRIDAY"] and preview.glyph.size == (512, 512)
    assert np.asarray(preview.glyph.convert("L")).min() == 0  # ink was drawn
    assert preview.canvas["boxes"] == [[float(v) for v in row[1:5]] for row in rows]
    assert preview.canvas["src"].startswith("data:image/png;base64,")
    assert preview.message.startswith("2 boxes on 512x512, glyph rendered in")
    assert Layout.load(preview.files["layout"]).texts == ["BLUE NOTE", "FRIDAY"]
    assert Image.open(preview.files["glyph"]).size == (512, 512)


def test_plan_explains_an_empty_prompt_and_one_without_quotes(studio):
    with pytest.raises(UIError, match="prompt: type what to paint"):
        studio.plan("  ", 512, 512)
    rows, preview = studio.plan("a poster with no words", 512, 512)
    assert rows == [] and "quotes no words" in preview.message


def test_editing_a_row_changes_the_preview(studio):
    before = studio.preview(ROWS, 512, 256)
    edited = [["JAZZ", *ROWS[0][1:]], ROWS[1]]
    after = studio.preview(edited, 512, 256)
    assert after.layout.texts == ["JAZZ", "friday 9pm"]
    assert after.canvas["src"] != before.canvas["src"] and after.canvas["labels"][0] == "1. JAZZ"
    with pytest.raises(TableError, match=r"row 1 \('JAZZ'\), x1: must be greater than x0"):
        studio.preview([["JAZZ", 300, 10, 100, 50, 0, "", ""]], 512, 256)


def test_load_layout_reads_a_saved_file_and_names_a_bad_one(studio, tmp_path):
    path = tmp_path / "poster.json"
    Layout(640, 320, (TextBox("SALE", (0.1, 0.1, 0.5, 0.5)),), caption="a sale").save(path)
    rows, canvas, caption = studio.load_layout(path, 512, 512)
    assert rows == [["SALE", 64, 32, 320, 160, 0, "", ""]] and canvas == CanvasSize(640, 320) and caption == "a sale"
    path.write_text('{"boxes": [{"text": "SALE", "box": [0.5, 0.1, 0.2, 0.5]}]}')
    with pytest.raises(UIError, match=r"poster.json: box 0 \('SALE'\): 'box' .* has x1 <= x0"):
        studio.load_layout(path, 512, 512)


def test_model_choice_resolution_and_missing_models(tmp_path, monkeypatch):
    assert resolve_model_choice("sd15-canny") == "sd15-canny"
    assert resolve_model_choice("some-org/some-model") == "some-org/some-model"  # a hub id, left to diffusers
    assert resolve_model_choice(str(tmp_path)) == tmp_path
    with pytest.raises(UIError, match="model not found: .*nowhere is neither a preset"):
        resolve_model_choice(str(tmp_path / "nowhere"))
    monkeypatch.setattr("textgen.pipeline_config.SHIPPED_MODEL", tmp_path / "missing")
    with pytest.raises(UIError, match="model not found: the shipped model is missing"):
        resolve_model_choice(SHIPPED)
    assert model_defaults(SHIPPED) == (20, 7.5)  # the pipeline's defaults when nothing can be read


def test_friendly_errors_say_what_to_do():
    import torch

    from textgen.core.ocr import OCRError

    assert friendly_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")).startswith(
        "out of memory while generating"
    )
    assert "try a smaller best-of" in friendly_error(MemoryError())
    assert "pip install 'textgen[ocr]'" in friendly_error(OCRError("no weights for rapidocr"))
    assert friendly_error(FileNotFoundError("x/y: nope")) == "not found: x/y: nope"
    assert friendly_error(OSError("no file named model_index.json")).startswith("model could not be loaded")
    assert friendly_error(ValueError("steps must be positive")) == "steps must be positive"
    assert friendly_error(KeyError("unet")) == "KeyError: 'unet'"


# ------------------------------------------------------------------------------------------------ generation
def _tiny_pipeline_folder(path: Path) -> Path:
    """A random PosterPipeline at 64x64, as tests/textgen/test_pipeline.py builds one (no download)."""
    from tests.stacks import tiny_sd
    from textgen.pipeline import PipelineConfig, PosterPipeline

    sd = tiny_sd()
    PosterPipeline(sd, config=PipelineConfig(num_inference_steps=3, guidance_scale=2.0)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return _tiny_pipeline_folder(tmp_path_factory.mktemp("ui") / "tiny")


class ScriptedOCR:
    """Reads every box of the n-th image exactly and nothing else: makes the ranking predictable."""

    def __init__(self, exact_image: int, boxes_per_image: int):
        self.exact_image, self.boxes_per_image, self.calls, self.answers = exact_image, boxes_per_image, 0, []

    def read(self, image):
        image_index = self.calls // self.boxes_per_image
        self.calls += 1
        text = self.answers[self.calls - 1] if image_index == self.exact_image else "zzz"
        return [OCRBox(text=text, polygon=((0, 0), (1, 0), (1, 1), (0, 1)), box=(0, 0, 1, 1), confidence=1.0)]


def test_generate_ranks_by_ocr_and_writes_the_downloads(tiny_model, tmp_path):
    studio = Studio(StudioOptions(model=str(tiny_model), device="cpu", output_dir=str(tmp_path)))
    assert model_defaults(str(tiny_model)) == (3, 2.0)
    pipe = studio.pipelines.get(str(tiny_model))
    ocr = ScriptedOCR(exact_image=2, boxes_per_image=2)
    ocr.answers = ["zzz"] * 4 + [row[0] for row in ROWS]
    pipe._ocr_engine = ocr
    result = studio.generate("a jazz poster", ROWS, 512, 256, model=str(tiny_model), seed=1, steps=2, best_of=3)
    assert isinstance(result, Generation) and len(result.images) == 3
    assert result.scores[0] == 1.0 and result.scores[1:] == [pytest.approx(0.0, abs=0.35)] * 2
    assert result.ocr_texts[0] == ["BLUE NOTE", "friday 9pm"]
    assert result.captions()[0] == "#1 · OCR score 1.00 · read: BLUE NOTE | friday 9pm"
    assert result.score_rows()[0] == [1, 1.0, "'BLUE NOTE' -> 'BLUE NOTE'; 'friday 9pm' -> 'friday 9pm'"]
    names = [p.name for p in result.files]
    assert names == ["poster.png", "candidate_1.png", "candidate_2.png", "candidate_3.png", "layout.json", "glyph.png"]
    assert Image.open(result.files[0]).size == (64, 64)
    saved = json.loads(result.files[4].read_text())
    assert (saved["width"], saved["height"]) == (64, 64) and [b["text"] for b in saved["boxes"]] == result.layout.texts
    assert "3 images at 64x64" in result.message and "best OCR score 1.00" in result.message
    assert len(studio.pipelines) == 1 and studio.pipelines.get(str(tiny_model)) is pipe  # loaded once


def test_generate_scores_a_single_image_and_survives_missing_ocr(tiny_model, tmp_path):
    studio = Studio(StudioOptions(device="cpu", output_dir=str(tmp_path)))
    pipe = studio.pipelines.get(str(tiny_model))
    ocr = ScriptedOCR(exact_image=0, boxes_per_image=2)
    ocr.answers = ["BLUE NOTE", "friday 9pm"]
    pipe._ocr_engine = ocr
    one = studio.generate("jazz", ROWS, 512, 256, model=str(tiny_model), steps=2, best_of=1, output_size="64x64")
    assert len(one.images) == 1 and one.scores == [1.0] and [p.name for p in one.files][0] == "poster.png"

    class NoOCR:
        def read(self, image):
            raise ImportError("rapidocr is not installed")

    pipe._ocr_engine = NoOCR()
    one = studio.generate("jazz", ROWS, 512, 256, model=str(tiny_model), steps=2, best_of=1)
    assert one.scores is None and "no OCR score: OCR is not available" in one.message  # the image still shows
    pipe._ocr_engine = None
    import textgen.core.ocr

    def missing(*args, **kwargs):
        raise textgen.core.ocr.OCRError("rapidocr weights not found")

    original = textgen.core.ocr.get_engine
    textgen.core.ocr.get_engine = missing
    try:
        with pytest.raises(UIError, match="OCR is not available .*or set best-of to 1"):
            studio.generate("jazz", ROWS, 512, 256, model=str(tiny_model), steps=2, best_of=2)
    finally:
        textgen.core.ocr.get_engine = original


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(prompt=" "), "prompt: describe the picture"),
        (dict(rows=[["", 1, 1, 9, 9, 0, "", ""]]), "row 1, text: is empty"),
        (dict(steps=0.5), "steps: expected a whole number in [1, 200], got 0.5"),
        (dict(best_of=99), "best-of: expected a whole number in [1, 16], got 99"),
        (dict(seed=-1), "seed: expected a whole number"),
        (dict(guidance="strong"), "guidance: expected a number, got 'strong'"),
        (dict(output_size="big"), "output size: expected WxH such as 512x512, got 'big'"),
        (dict(model="/no/such/model"), "model not found: /no/such/model is neither a preset"),
        (dict(model="sd15-glyph"), "preset 'sd15-glyph' needs controlnet=<folder or hub id>"),
    ],
)
def test_generate_errors_are_messages(kwargs, message, tmp_path):
    studio = Studio(StudioOptions(device="cpu", output_dir=str(tmp_path)))
    args = dict(prompt="jazz", rows=ROWS, width=512, height=256, model="/no/such/model", steps=2)
    args.update(kwargs)
    if "model" not in kwargs and not any(k in kwargs for k in ("prompt", "rows")):
        args["model"] = "/no/such/model"  # inputs are checked before any model is loaded
    with pytest.raises(UIError) as err:
        studio.generate(args.pop("prompt"), args.pop("rows"), args.pop("width"), args.pop("height"), **args)
    assert message in str(err.value)


def test_out_of_memory_is_a_message_and_the_next_call_works(tiny_model, tmp_path):
    import torch

    studio = Studio(StudioOptions(device="cpu", output_dir=str(tmp_path)))
    pipe = studio.pipelines.get(str(tiny_model))
    pipe._ocr_engine = ScriptedOCR(exact_image=0, boxes_per_image=2)
    pipe._ocr_engine.answers = ["x", "y"]
    real_sd = pipe.sd

    class OutOfMemory:
        """The diffusers pipeline, except that calling it runs out of memory."""

        def __getattr__(self, name):
            return getattr(real_sd, name)

        def __call__(self, *args, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    pipe.sd = OutOfMemory()
    with pytest.raises(UIError, match="out of memory while generating .* try a smaller best-of"):
        studio.generate("jazz", ROWS, 512, 256, model=str(tiny_model), steps=2)
    pipe.sd = real_sd
    assert len(studio.generate("jazz", ROWS, 512, 256, model=str(tiny_model), steps=2).images) == 1


# ---------------------------------------------------------------------------------------------- CLI and app
def test_cli_registers_ui_and_checks_its_arguments(capsys):
    with pytest.raises(SystemExit):
        cli_main(["ui", "--help"])
    assert "--model" in capsys.readouterr().out
    assert cli_main(["ui", "--port", "70000"]) == 2
    assert "textgen ui: error: --port must be in [0, 65535], got 70000" in capsys.readouterr().err


def test_importing_the_ui_package_stays_light():
    import subprocess

    code = "import sys, textgen.ui.table, textgen.ui.studio; print('gradio' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_app_serves_the_page(tmp_path):
    from textgen.ui.app import build_app, launch

    app = build_app(StudioOptions(device="cpu", output_dir=str(tmp_path)))
    url = launch(app, port=_free_port(), block=False, quiet=True)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
        with urllib.request.urlopen(url + "config", timeout=30) as response:
            config = json.loads(response.read())
        ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
        assert {"tg-prompt", "tg-plan", "tg-canvas", "tg-table", "tg-generate", "tg-gallery", "tg-scores"} <= ids
    finally:
        app.close()


# ------------------------------------------------------------------------------------------------ the browser
def _chromium() -> str | None:
    for name in (os.environ.get("TEXTGEN_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_browser_plan_edit_drag_add_delete_generate(tmp_path, tiny_model):
    """A person's session in headless Chromium: plan, edit a box, drag one, generate with the shipped model, then
    change the word of an uploaded image in the Edit tab."""
    from playwright.sync_api import expect, sync_playwright

    from textgen.pipeline import SHIPPED_MODEL
    from textgen.ui.app import build_app, launch

    shipped = (SHIPPED_MODEL / "model_index.json").is_file()
    model = None if shipped else str(tiny_model)  # the shipped model when it is there (CI), else a tiny random one
    app = build_app(StudioOptions(model=model, device="cpu", output_dir=str(tmp_path / "out")))
    url = launch(app, port=_free_port(), block=False, quiet=True)
    errors: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                page.on("pageerror", lambda err: errors.append(str(err)))
                page.goto(url)

                # Type a prompt and plan: two boxes over the glyph preview, and their rows in the table.
                page.fill("#tg-prompt textarea", 'A poster for a bakery that says "OPEN" and "FRESH BREAD"')
                page.click("#tg-plan")
                expect(page.locator("#tg-canvas .tg-box")).to_have_count(2, timeout=30_000)
                expect(page.locator("#tg-canvas .tg-label")).to_have_text(["1. OPEN", "2. FRESH BREAD"])
                glyph_before = page.locator("#tg-canvas img.tg-glyph").get_attribute("src")

                # Edit the first box's text in the table: the preview re-renders with the new words.
                page.locator('#tg-table [data-testid="cell-0-0"]').dblclick()
                page.keyboard.press("Control+A")
                page.keyboard.type("HOT")
                page.keyboard.press("Enter")
                expect(page.locator("#tg-canvas .tg-label").first).to_have_text("1. HOT", timeout=15_000)
                assert page.locator("#tg-canvas img.tg-glyph").get_attribute("src") != glyph_before

                # A bad number is a message naming the row and column; the page stays alive.
                page.locator('#tg-table [data-testid="cell-0-3"]').dblclick()
                page.keyboard.press("Control+A")
                page.keyboard.type("1")
                page.keyboard.press("Enter")
                expect(page.locator("#tg-status")).to_contain_text("row 1 ('HOT'), x1: must be greater than x0")
                page.locator('#tg-table [data-testid="cell-0-3"]').dblclick()
                page.keyboard.press("Control+A")
                page.keyboard.type("480")
                page.keyboard.press("Enter")
                expect(page.locator("#tg-status")).to_contain_text("2 boxes on 512x512", timeout=15_000)

                # Drag the second box left and down by its middle: its row follows.
                x0_before = float(page.locator('#tg-table [data-testid="cell-1-1"]').inner_text())
                box = page.locator("#tg-canvas .tg-box").nth(1).bounding_box()
                page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] / 2 - 40, box["y"] + box["height"] / 2 + 20, steps=5)
                page.mouse.up()
                expect(page.locator('#tg-table [data-testid="cell-1-1"]')).not_to_have_text(
                    str(int(x0_before)) if x0_before.is_integer() else str(x0_before), timeout=15_000
                )
                assert float(page.locator('#tg-table [data-testid="cell-1-1"]').inner_text()) < x0_before

                # Add a box, click it on the canvas to select it, delete it.
                page.click("#tg-add")
                expect(page.locator("#tg-canvas .tg-label")).to_have_text(["1. HOT", "2. FRESH BREAD", "3. TEXT"])
                added = page.locator("#tg-canvas .tg-box").nth(2).bounding_box()
                page.mouse.click(added["x"] + 8, added["y"] + 8)
                expect(page.locator("#tg-status")).to_contain_text("box 3 selected")
                page.click("#tg-delete")
                expect(page.locator("#tg-canvas .tg-label")).to_have_text(["1. HOT", "2. FRESH BREAD"])

                # Generate at 2 steps, best of 2: images appear with their OCR scores, and the downloads.
                # (For the README's picture, TEXTGEN_UI_SCREENSHOT keeps the model's own number of steps.)
                if not os.environ.get("TEXTGEN_UI_SCREENSHOT"):
                    page.fill("#tg-steps input", "2")
                page.fill("#tg-best-of input", "2")
                page.click("#tg-generate")
                expect(page.locator("#tg-gallery img")).to_have_count(2, timeout=180_000)
                expect(page.locator("#tg-gen-status")).to_contain_text("2 images at", timeout=30_000)
                expect(page.locator("#tg-scores")).to_contain_text("'HOT' ->")
                expect(page.locator("#tg-files a[href$='/poster.png']")).to_have_count(1)
                layout_link = page.locator("#tg-files a[href$='/layout.json']").get_attribute("href")
                with urllib.request.urlopen(layout_link, timeout=30) as response:  # the download a person gets
                    downloaded = json.loads(response.read())
                assert [b["text"] for b in downloaded["boxes"]] == ["HOT", "FRESH BREAD"]
                time.sleep(0.5)  # let the gallery's images finish decoding for the screenshot
                shot = tmp_path / "ui.png"
                page.screenshot(path=str(shot), full_page=True)

                # The Edit tab: upload a sign, OCR's box appears as a row, change its text, edit, compare.
                sign = Image.new("RGB", (160, 96), (250, 250, 245))
                ImageDraw.Draw(sign).text((18, 34), "SALE", fill=(10, 10, 10),
                                          font=get_font(resolve_font("noto-sans-bold"), 34))  # fmt: skip
                sign.save(tmp_path / "sign.png")
                page.click("#tg-tab-edit-button")
                page.set_input_files("#tg-edit-image input[type=file]", str(tmp_path / "sign.png"))
                expect(page.locator("#tg-edit-status")).to_contain_text("OCR found 1 text box", timeout=60_000)
                expect(page.locator('#tg-edit-table [data-testid="cell-0-0"]')).to_have_text("SALE")
                page.locator('#tg-edit-table [data-testid="cell-0-1"]').dblclick()
                page.keyboard.press("Control+A")
                page.keyboard.type("OPEN")
                page.keyboard.press("Enter")
                page.click("#tg-edit-run")
                expect(page.locator("#tg-edit-status")).to_contain_text("1 box edited", timeout=180_000)
                expect(page.locator("#tg-edit-after img")).to_have_count(1)
                expect(page.locator("#tg-edit-reads")).to_contain_text("OPEN")
                expect(page.locator("#tg-edit-files a[href$='/edited.png']")).to_have_count(1)
            finally:
                browser.close()
    finally:
        app.close()
    assert not errors, errors
    assert Image.open(shot).size[0] == 1400
    target = os.environ.get("TEXTGEN_UI_SCREENSHOT")  # e.g. docs/images/ui.png, to refresh the README's picture
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
