"""recipes/edit_figures.py: the README's before/after figures come from the real commands (tiny model, fake OCR)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tests.stacks import tiny_sd
from textgen.core.shards import OCRBox
from textgen.pipeline import PipelineConfig, PosterPipeline

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes"))

import edit_figures  # noqa: E402


def test_figures_are_made_with_generate_and_edit_replace(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    model = tmp_path / "model"
    PosterPipeline(tiny_sd(glyph_concat=True), config=PipelineConfig(num_inference_steps=2, guidance_scale=1.0)
                   ).save_pretrained(model)  # fmt: skip
    photo = tmp_path / "bench" / edit_figures.PHOTO
    photo.parent.mkdir(parents=True)
    image = Image.new("RGB", (520, 320), (20, 60, 40))
    ImageDraw.Draw(image).text((350, 210), "EXIT", fill="white")
    image.save(photo)

    class Reads:  # finds SALE on the poster and EXIT on the photo where they are
        def read(self, image):
            if image.width == 520:
                return [OCRBox.from_polygon("EXIT", [(344, 206), (384, 206), (384, 228), (344, 228)], 0.9)]
            return [OCRBox.from_polygon("SALE", [(10, 30), (50, 30), (50, 44), (10, 44)], 0.9)]

    monkeypatch.setattr("textgen.core.ocr.get_engine", lambda *a, **k: Reads())
    out = tmp_path / "figs"
    code = edit_figures.main(["--benchmarks", str(tmp_path / "bench"), "-o", str(out), "--model", str(model),
                              "--work", str(tmp_path / "work")])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "--replace SALE=PARTY" in printed and "--replace EXIT=OPEN" in printed
    poster = Image.open(out / "edit_synthetic.png")
    assert poster.size == (2 * 128 + 6, 128)  # the 64 px poster, twice, enlarged 2x
    photo_fig = np.asarray(Image.open(out / "edit_photo.png"))
    w = (photo_fig.shape[1] - 6) // 2
    assert photo_fig.shape[:2] == (155, 2 * 260 + 6)
    assert not np.array_equal(photo_fig[:, :w], photo_fig[:, w + 6 :])  # the sign was repainted


def test_a_missing_benchmarks_folder_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        edit_figures.main(["--benchmarks", str(tmp_path), "-o", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "img_9.jpg: not found" in capsys.readouterr().err
