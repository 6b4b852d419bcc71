"""Editing existing images and region repair (textgen.edit, PosterPipeline.edit, textgen edit) on tiny stacks."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tests.stacks import tiny_sd
from textgen import cli
from textgen.core.layout import Layout, LayoutError, TextBox
from textgen.core.shards import OCRBox
from textgen.edit import box_mask, edit_image, edit_window, fill_background, repair, text_color_name
from textgen.pipeline import PipelineConfig, PosterPipeline


def _poster(text="OPEN", size=64):
    image = Image.new("RGB", (size, size), (30, 90, 200))
    ImageDraw.Draw(image).rectangle((0, 0, size - 1, size // 4), fill=(250, 210, 40))  # something to keep
    ImageDraw.Draw(image).text((10, 30), text, fill=(245, 245, 242))
    return image


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    return PosterPipeline(tiny_sd(glyph_concat=True), config=PipelineConfig(num_inference_steps=3, guidance_scale=1.0))


EDIT = Layout(64, 64, (TextBox("SALE", (0.1, 0.4, 0.8, 0.65)),))


def test_pixels_outside_the_mask_come_back_identical(pipe):
    image = _poster()
    result = edit_image(pipe, image, EDIT, seed=0)
    before, after = np.asarray(image), np.asarray(result.image)
    inside = np.asarray(result.mask) > 0
    assert result.image.size == image.size
    assert np.array_equal(before[~inside], after[~inside])  # bit for bit
    assert not np.array_equal(before[inside], after[inside])  # the box was repainted
    assert result.evaluations == 3 and len(result.windows) == 1


def test_a_given_mask_is_the_only_region_touched(pipe):
    image = _poster()
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rectangle((20, 30, 40, 40), fill=255)
    result = edit_image(pipe, image, EDIT, mask=mask, seed=0)
    changed = np.any(np.asarray(result.image) != np.asarray(image), axis=-1)
    assert not changed[np.asarray(mask) == 0].any()
    with pytest.raises(ValueError, match="mask is 10x10, the image 64x64"):
        edit_image(pipe, image, EDIT, mask=Image.new("L", (10, 10), 255))


def test_edits_are_reproducible_and_seeds_differ(pipe):
    image = _poster()
    a = np.asarray(edit_image(pipe, image, EDIT, seed=1).image)
    b = np.asarray(edit_image(pipe, image, EDIT, seed=1).image)
    c = np.asarray(edit_image(pipe, image, EDIT, seed=2).image)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("box", "text", "message"),
    [((0.5, 0.5, 0.5, 0.6), "A", "x1 <= x0"), ((0.1, 0.1, 1.2, 0.3), "A", "outside"), ((0.1, 0.1, 0.4, 0.3), "\u200b",
     "no visible character"), ((0.1, 0.1, 0.11, 0.3), "A", "too small")],
)  # fmt: skip
def test_bad_edits_are_named(pipe, box, text, message):
    with pytest.raises(LayoutError, match=message):
        edit_image(pipe, _poster(), Layout(64, 64, (TextBox(text, box),)))
    with pytest.raises(LayoutError, match="nothing to edit"):
        edit_image(pipe, _poster(), Layout(64, 64, ()))


def test_fill_background_recovers_a_gradient_under_text():
    ramp = np.tile(np.linspace(20, 220, 64, dtype=np.float32), (64, 1))
    clean = Image.fromarray(np.stack([ramp, ramp * 0.5, 255 - ramp], axis=-1).astype(np.uint8))
    dirty = clean.copy()
    ImageDraw.Draw(dirty).rectangle((20, 25, 44, 38), fill=(0, 0, 0))
    mask = box_mask(dirty.size, [(20, 25, 45, 39)], margin=0.1)
    filled = np.asarray(fill_background(dirty, mask), dtype=np.float32)
    error = np.abs(filled - np.asarray(clean, dtype=np.float32))[np.asarray(mask) > 0]
    assert error.mean() < 4.0  # the black block is gone, the gradient is back


def test_window_and_colour_helpers():
    left, top, right, bottom = edit_window((100, 100, 180, 120), (640, 480))
    assert right - left == bottom - top == 100  # the box spans 80% of the window's width
    assert left <= 100 and right >= 180 and top <= 100 and bottom >= 120
    assert edit_window((0, 0, 600, 50), (640, 480)) == (60, 0, 540, 480)  # the shorter side, centred on the box
    image = Image.new("RGB", (60, 30), (20, 32, 92))
    ImageDraw.Draw(image).rectangle((10, 10, 50, 20), fill=(245, 245, 242))
    assert text_color_name(image, (0, 0, 60, 30)) == "white"


def test_pipeline_edit_returns_the_call_s_output_type_best_first(pipe):
    class Reads:
        def __init__(self):
            self.n = 0

        def read(self, image):
            self.n += 1
            text = "SALE" if self.n % 2 == 0 else "SAIE"
            return [OCRBox.from_polygon(text, [(0, 0), (9, 0), (9, 9), (0, 9)], 0.9)]

    pipe._ocr_engine = Reads()
    out = pipe.edit(_poster(), EDIT, best_of=2, seed=0)
    assert len(out.images) == 2 and out.scores == sorted(out.scores, reverse=True)
    assert out.ocr_texts[0] == ["SALE"] and out.scores[0] == 1.0
    assert out.unet_evaluations == 6 and out.layout.texts == ["SALE"]


def test_repair_repaints_only_the_wrong_boxes_and_keeps_the_best(pipe):
    layout = Layout(64, 64, (TextBox("OPEN", (0.05, 0.05, 0.5, 0.3)), TextBox("NOW", (0.1, 0.6, 0.9, 0.9))))

    class Judge:
        """Reads boxes in the order asked: the first box right; the second one (and its repaints) wrong."""

        def __init__(self):
            self.calls = 0

        def read(self, crop):
            self.calls += 1
            text = "OPEN" if self.calls == 1 else "NOX"
            return [OCRBox.from_polygon(text, [(0, 0), (9, 0), (9, 9), (0, 9)], 0.9)]

    image = _poster()
    judge = Judge()
    out = repair(pipe, image, layout, judge, rounds=2, seed=0)
    assert out.reads[0] == "OPEN" and out.scores[0] == 1.0
    assert out.rounds == 2 and out.evaluations == 2 * 3  # only the wrong box, twice
    assert judge.calls == 2 + 2  # both boxes read once, then only the repainted one each round
    before, after = np.asarray(image), np.asarray(out.image)
    upper = np.asarray(box_mask(image.size, [(3, 3, 32, 19)], 0.15)) > 0
    assert np.array_equal(before[upper], after[upper])  # the right box was never touched
    assert repair(pipe, image, layout, Judge(), rounds=0).evaluations == 0


def test_generate_with_repair_counts_the_compute(pipe, monkeypatch):
    calls = []

    def fake_repair(pipe_, image, layout, engine, rounds, **kwargs):
        from textgen.edit import RepairResult

        calls.append(rounds)
        return RepairResult(image=image, reads=["X"], scores=[0.5], rounds=rounds, evaluations=7)

    monkeypatch.setattr("textgen.edit.repair", fake_repair)
    pipe._ocr_engine = object()
    out = pipe('a sign that reads "OPEN"', seed=0, repair=2, progress=False)
    assert calls == [2] and out.unet_evaluations == 3 + 7 and out.ocr_texts[0] == ["X"]


def test_the_inpainting_route_edits_with_diffusers_inpaint_pipeline():
    """SD route: StableDiffusionControlNetInpaintPipeline (a 4-channel VAE UNet) under the same API."""
    from diffusers import StableDiffusionControlNetInpaintPipeline

    base = tiny_sd(space="vae")
    sd = StableDiffusionControlNetInpaintPipeline(**base.components)
    pipe = PosterPipeline(sd, config=PipelineConfig(num_inference_steps=2, guidance_scale=1.0))
    assert pipe.inpaints
    image = _poster()
    result = edit_image(pipe, image, EDIT, seed=0)
    inside = np.asarray(result.mask) > 0
    assert np.array_equal(np.asarray(image)[~inside], np.asarray(result.image)[~inside])
    poster = pipe('a sign that reads "OPEN"', seed=0, progress=False)  # and it still paints new posters
    assert poster.images[0].size == (64, 64)


def test_edit_command_end_to_end(tmp_path, pipe, monkeypatch, capsys):
    folder = tmp_path / "model"
    pipe.save_pretrained(folder)
    _poster().save(tmp_path / "in.png")

    class Finds:
        def read(self, image):
            return [OCRBox.from_polygon("OPEN", [(8, 28), (40, 28), (40, 40), (8, 40)], 0.9)]

    monkeypatch.setattr("textgen.core.ocr.get_engine", lambda *a, **k: Finds())
    out = tmp_path / "out.png"
    code = cli.main(["edit", str(tmp_path / "in.png"), "-o", str(out), "--replace", "OPEN=SALE", "--model",
                     str(folder), "--steps", "2"])  # fmt: skip
    assert code == 0 and Image.open(out).size == (64, 64)
    assert "found 'OPEN'" in capsys.readouterr().out
    code = cli.main(["edit", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.png"), "--replace", "NOPE=SALE",
                     "--model", str(folder)])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "'NOPE' not found" in err and "OCR read 'OPEN'" in err
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "edits.json").write_text(json.dumps({"width": 64, "height": 64, "boxes": [
        {"text": "NEW", "box": [0.1, 0.4, 0.8, 0.65]}]}))  # fmt: skip
    assert cli.main(["edit", str(tmp_path / "in.png"), "-o", str(tmp_path / "l.png"), "--layout",
                     str(tmp_path / "edits.json"), "--model", str(folder), "--steps", "2"]) == 0  # fmt: skip


def test_edit_evaluation_scores_accuracy_residue_and_preservation(pipe, tmp_path):
    from textgen.eval_edit import edit_cases, evaluate_edits

    cases = edit_cases(3)
    assert all(c["old"] != c["new"] for c in cases) and len({c["name"] for c in cases}) == 3

    class Reads:
        def __init__(self):
            self.n = 0

        def read(self, image):
            self.n += 1
            text = cases[self.n - 1]["new"] if self.n == 1 else cases[self.n - 1]["old"]  # 1 right, 2 residue
            return [OCRBox.from_polygon(text, [(0, 0), (9, 0), (9, 9), (0, 9)], 0.9)]

    report = evaluate_edits(pipe, Reads(), 3, tmp_path)
    s = report["summary"]
    assert s["cases"] == 3 and s["edit_sentence_accuracy"] == pytest.approx(1 / 3)
    assert s["residue_rate"] == pytest.approx(2 / 3)
    assert s["unchanged_outside"] == 1.0 and s["ring_psnr_min"] == float("inf")
    assert len(list((tmp_path / "images").glob("*.png"))) == 3
    heights = [r["box_height_px"] for r in report["cases"]]
    assert heights == [round((c["box"][3] - c["box"][1]) * 128, 1) for c in cases]
    assert sum(b["cases"] for b in s["by_box_height"]) == 3
    right_bin = next(b for b in s["by_box_height"] if b["from_px"] <= heights[0] < b["to_px"])
    assert right_bin["edit_sentence_accuracy"] > 0  # the one exact edit is counted in its own bin


def test_by_height_bins_the_cases():
    from textgen.eval_edit import by_height

    rows = [{"box_height_px": 14.0, "exact": False}, {"box_height_px": 22.0, "exact": True},
            {"box_height_px": 23.9, "exact": False}, {"box_height_px": 60.0, "exact": True}]  # fmt: skip
    assert by_height(rows) == [
        {"from_px": 0, "to_px": 16, "cases": 1, "edit_sentence_accuracy": 0.0},
        {"from_px": 20, "to_px": 24, "cases": 2, "edit_sentence_accuracy": 0.5},
        {"from_px": 56, "to_px": 1000, "cases": 1, "edit_sentence_accuracy": 1.0},
    ]


def test_replace_keeps_the_other_words_of_an_ocr_line():
    from textgen.edit_cli import replacements

    def line(text):
        return OCRBox(text=text, polygon=((0, 0), (9, 0), (9, 9), (0, 9)), box=(0, 0, 9, 9), confidence=1.0)

    found = [line("WHY PAY FOR"), line("NOTHING?"), line("pay")]
    assert [t for _, t in replacements(found, "PAY", "BUY")] == ["BUY"]  # a line that is the word wins
    assert [t for _, t in replacements(found[:2], "pay", "BUY")] == ["WHY BUY FOR"]
    assert replacements(found[:2], "PA", "X") == []  # whole words only
    assert [t for _, t in replacements(found, "NOTHING?", "ALL")] == ["ALL"]
