import json

import numpy as np
import pytest
import torch

from tests.stacks import tiny_sd
from textgen.core.layout import Layout, TextBox
from textgen.core.shards import OCRBox
from textgen.models import PixelUnshuffleAutoencoder
from textgen.pipeline import PRESETS, PosterOutput, PosterPipeline, SpeedOptions

LAYOUT = Layout(64, 64, (TextBox("OPEN", (0.1, 0.1, 0.9, 0.45)), TextBox("24/7", (0.2, 0.55, 0.8, 0.9))))


def _sd(space: str = "unshuffle"):
    return tiny_sd(space=space)


@pytest.fixture(scope="module")
def sd():
    return _sd()


def _call(pipe, **kwargs):
    defaults = dict(num_inference_steps=2, seed=0, progress=False)
    return pipe('a sign that says "OPEN" "24/7"', **{**defaults, **kwargs})


def test_pixel_unshuffle_autoencoder_is_lossless():
    vae = PixelUnshuffleAutoencoder(factor=4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = vae.encode(x).latent_dist.sample()
    assert z.shape == (2, 48, 8, 8)
    assert torch.equal(vae.decode(z).sample, x)
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 4


@pytest.mark.parametrize("control", ["glyph", "canny"])
def test_full_pipeline_runs_for_both_control_modes(sd, control):
    pipe = PosterPipeline(sd, control=control)
    out = _call(pipe, layout=LAYOUT)
    assert isinstance(out, PosterOutput)
    assert len(out.images) == 1 and out.images[0].size == (64, 64)
    assert out.layout.texts == ["OPEN", "24/7"] and out.layout.caption.startswith("a sign")
    glyph = np.asarray(out.glyph.convert("L"))
    control_image = np.asarray(out.control_image.convert("L"))
    assert glyph.mean() > 128  # black text on white
    if control == "glyph":
        assert np.array_equal(glyph, control_image)
    else:
        assert control_image.mean() < 128 and control_image.max() == 255  # white edges on black


def test_vae_space_runs(sd):
    pipe = PosterPipeline(_sd("vae"))
    out = _call(pipe, layout=LAYOUT)
    assert out.images[0].size == (64, 64)


def test_same_seed_same_image_and_different_seed_differs(sd):
    pipe = PosterPipeline(sd)
    a = np.asarray(_call(pipe, layout=LAYOUT, seed=3).images[0])
    b = np.asarray(_call(pipe, layout=LAYOUT, seed=3).images[0])
    c = np.asarray(_call(pipe, layout=LAYOUT, seed=4).images[0])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_glyph_condition_changes_the_output(sd):
    pipe = PosterPipeline(sd)
    a = np.asarray(_call(pipe, layout=LAYOUT).images[0]).astype(int)
    other = Layout(64, 64, (TextBox("SALE", (0.05, 0.3, 0.95, 0.7)),))
    b = np.asarray(_call(pipe, layout=other).images[0]).astype(int)
    assert np.abs(a - b).mean() > 0.1  # the random tiny UNet damps it, but the glyph reaches the pixels


def test_save_and_load_round_trip(sd, tmp_path):
    pipe = PosterPipeline(sd, control="canny")
    pipe.config.num_inference_steps = 2
    pipe.save_pretrained(tmp_path / "poster")
    saved = json.loads((tmp_path / "poster" / "textgen_pipeline.json").read_text())
    assert saved["control"] == "canny"
    assert list((tmp_path / "poster" / "unet").glob("*.safetensors"))
    loaded = PosterPipeline.from_pretrained(tmp_path / "poster", local_files_only=True)
    assert loaded.control == "canny" and loaded.config.num_inference_steps == 2
    assert isinstance(loaded.sd.vae, PixelUnshuffleAutoencoder)
    a = np.asarray(_call(pipe, layout=LAYOUT).images[0])
    b = np.asarray(_call(loaded, layout=LAYOUT).images[0])
    assert np.array_equal(a, b)


def test_from_pretrained_with_separate_base_and_controlnet(sd, tmp_path):
    sd.save_pretrained(tmp_path / "base", safe_serialization=True)
    sd.controlnet.save_pretrained(tmp_path / "cn", safe_serialization=True)
    import shutil

    shutil.rmtree(tmp_path / "base" / "controlnet")
    pipe = PosterPipeline.from_pretrained(tmp_path / "base", tmp_path / "cn", local_files_only=True)
    assert _call(pipe, layout=LAYOUT).images[0].size == (64, 64)
    with pytest.raises(ValueError, match="needs a ControlNet"):
        PosterPipeline.from_pretrained(tmp_path / "base", local_files_only=True)


def test_presets_resolve_to_hub_ids():
    assert PRESETS["sd15-canny"].controlnet == "lllyasviel/sd-controlnet-canny"
    assert PRESETS["sd15-canny"].base == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    with pytest.raises(ValueError, match="needs controlnet="):
        PosterPipeline.from_pretrained("sd15-glyph", local_files_only=True)


def test_missing_model_offline_fails_clearly(tmp_path):
    with pytest.raises(OSError):
        PosterPipeline.from_pretrained(tmp_path / "nothing-here", tmp_path / "no-cn", local_files_only=True)


class _ScriptedOCR:
    """Reads from a script: the n-th image read returns the n-th entry (isolates the ranking logic)."""

    name = "scripted"

    def __init__(self, readings):
        self.readings = list(readings)
        self.calls = 0

    def read(self, image):
        text = self.readings[self.calls % len(self.readings)]
        self.calls += 1
        w, h = image.size
        return [OCRBox.from_polygon(text, [[0, 0], [w, 0], [w, h], [0, h]], 0.9, "en")] if text else []


def test_best_of_n_returns_all_candidates_best_first(sd):
    one_box = Layout(64, 64, (TextBox("OPEN", (0.05, 0.1, 0.95, 0.9)),))
    engine = _ScriptedOCR(["OPFN", "", "OPEN", "XXXX"])
    pipe = PosterPipeline(sd, ocr_engine=engine)
    plain = _call(pipe, layout=one_box, best_of=4)
    assert len(plain.images) == 4
    assert plain.scores == sorted(plain.scores, reverse=True)
    assert plain.scores[0] == 1.0 and plain.ocr_texts[0] == ["OPEN"]
    assert plain.scores[-1] == 0.0
    # the best image is the third candidate of an unranked run with the same seed
    unranked = _call(pipe, layout=one_box, num_images_per_prompt=4)
    assert np.array_equal(np.asarray(plain.images[0]), np.asarray(unranked.images[2]))


def test_check_inputs(sd):
    pipe = PosterPipeline(sd)
    with pytest.raises(ValueError, match="non-empty string"):
        pipe("", layout=LAYOUT)
    with pytest.raises(ValueError, match="either layout= or texts="):
        pipe("x", layout=LAYOUT, texts=["a"])
    with pytest.raises(ValueError, match="multiples of 4"):
        pipe("x", layout=LAYOUT, height=66, width=64)
    with pytest.raises(ValueError, match="best_of"):
        pipe("x", layout=LAYOUT, best_of=0)
    with pytest.raises(ValueError, match="x1 <= x0"):
        pipe("x", layout=Layout(64, 64, (TextBox("A", (0.5, 0.1, 0.2, 0.3)),)))


def test_speed_options_apply(sd):
    pipe = PosterPipeline(_sd())
    pipe.enable_speedups(SpeedOptions(dtype="bf16", attention="sdpa", channels_last=True))
    assert pipe.sd.unet.dtype == torch.bfloat16
    out = _call(pipe, layout=LAYOUT)
    assert out.images[0].size == (64, 64)
    with pytest.raises(ValueError, match="dtype"):
        pipe.enable_speedups(SpeedOptions(dtype="fp64"))


def test_score_reads_a_legible_image_as_perfect_with_the_real_engine(sd):
    pytest.importorskip("rapidocr")
    from textgen.core.glyph import render_glyph

    layout = Layout(256, 256, (TextBox("OPEN", (0.1, 0.1, 0.9, 0.45)), TextBox("24/7", (0.2, 0.55, 0.8, 0.9))))
    pipe = PosterPipeline(sd)  # OCR engine: the data stage's default, loaded on first use
    scores, texts = pipe.score([render_glyph(layout), render_glyph(Layout(256, 256, ()))], layout)
    assert texts[0] == ["OPEN", "24/7"] and scores[0] == 1.0
    assert scores[1] == 0.0


def test_plans_the_layout_from_the_prompt_with_the_rule_planner(sd):
    pipe = PosterPipeline(sd)  # planner "rule" by default
    out = _call(pipe)
    assert out.layout.texts == ["OPEN", "24/7"]
    assert out.layout.size == (64, 64)
    assert np.asarray(out.glyph.convert("L")).min() == 0  # the planned words were drawn
    again = _call(pipe, texts=["SALE"])
    assert again.layout.texts == ["SALE"]
    none = pipe("a quiet landscape", num_inference_steps=2, seed=0, progress=False)
    assert none.layout.texts == [] and np.asarray(none.glyph).min() == 255


def test_glyph_input_unet_sees_the_glyph_and_scale_zero_blanks_it():
    """StackConfig(glyph_concat=True): the UNet takes the ink mask beside the latent (the shipped model's shape)."""
    sd = tiny_sd(glyph_concat=True, live_controlnet=False)
    unet = sd.unet
    assert sd.unet.config.in_channels == 48 + 16  # latent + glyph space-to-depth by 4
    assert sd.controlnet.config.in_channels == 48  # the ControlNet still takes the latent alone
    pipe = PosterPipeline(sd)  # its ControlNet is a zero-initialised no-op: only the UNet input carries the glyph
    a = np.asarray(_call(pipe, layout=LAYOUT).images[0]).astype(int)
    other = Layout(64, 64, (TextBox("SALE", (0.05, 0.3, 0.95, 0.7)),))
    b = np.asarray(_call(pipe, layout=other).images[0]).astype(int)
    blank = np.asarray(_call(pipe, layout=LAYOUT, controlnet_conditioning_scale=0).images[0]).astype(int)
    assert np.abs(a - b).mean() > 0.5 and np.abs(a - blank).mean() > 0.5
    assert pipe.sd.unet is unet  # the call's wrapper is gone afterwards
    assert pipe.sd.unet.config.in_channels == 64
