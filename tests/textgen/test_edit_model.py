"""One model that generates and edits (StackConfig.inpaint): its inputs, training masks, trainer, native edits."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from data_prep.synth import write_synthetic
from textgen import cli
from textgen import train_controlnet as tc
from textgen.core.layout import Layout, TextBox
from textgen.edit import edit_image
from textgen.models import StackConfig, UNetInputs, add_edit_inputs, build_stack, unet_inputs
from textgen.pipeline import PipelineConfig, PosterPipeline
from textgen.train_loss import edit_masks

STACK = {"resolution": 64, "unet_channels": [16, 32], "text_width": 32, "max_text_length": 128,
         "glyph_concat": True, "controlnet": False}  # fmt: skip
EDIT = Layout(64, 64, (TextBox("SALE", (0.1, 0.4, 0.8, 0.65)),))

pytestmark = pytest.mark.usefixtures("fresh_accelerator")


def _pipe(inpaint: bool, seed: int = 0) -> PosterPipeline:
    from diffusers import StableDiffusionPipeline

    parts = build_stack(StackConfig(**{**STACK, "unet_channels": (16, 32), "inpaint": inpaint}), seed=seed)
    parts.pop("controlnet")
    sd = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return PosterPipeline(sd, config=PipelineConfig(num_inference_steps=2, guidance_scale=1.0))


def _poster(size=64):
    image = Image.new("RGB", (size, size), (30, 90, 200))
    ImageDraw.Draw(image).rectangle((0, 0, size - 1, size // 4), fill=(250, 210, 40))
    ImageDraw.Draw(image).text((10, 30), "OPEN", fill=(245, 245, 242))
    return image


def _spy_conditions(monkeypatch) -> list:
    """Collects every condition tensor (glyph, masked image, mask) the pipeline hands its UNet."""
    import textgen.models

    seen = []
    real = textgen.models.GlyphInputUNet.__init__

    def spy(self, unet, glyph):
        seen.append(glyph.clone())
        real(self, unet, glyph)

    monkeypatch.setattr(textgen.models.GlyphInputUNet, "__init__", spy)
    return seen


def test_the_unet_inputs_are_read_from_its_channel_count():
    glyph = build_stack(StackConfig(**{**STACK, "unet_channels": (16, 32)}))["unet"]
    editing = build_stack(StackConfig(**{**STACK, "unet_channels": (16, 32), "inpaint": True}))["unet"]
    assert editing.config.in_channels == 48 + 16 + 48 + 16  # latent, glyph, masked image, mask
    assert unet_inputs(glyph, 48, 4) == UNetInputs(glyph=16)
    assert (
        unet_inputs(editing, 48, 4) == UNetInputs(glyph=16, masked=48, mask=16) and unet_inputs(editing, 48, 4).edits
    )
    assert not unet_inputs(glyph, 48, 4).edits
    assert unet_inputs(glyph, 64, 4) == UNetInputs()  # a standard UNet
    with pytest.raises(
        ValueError,
        match="64 input channels over a 40-channel latent .* none of: standard \\(40\\), glyph input \\(56\\)",
    ):
        unet_inputs(glyph, 40, 4)
    with pytest.raises(ValueError, match="inpaint=True needs glyph_concat=True"):
        build_stack(StackConfig(inpaint=True, glyph_concat=False))


def test_added_edit_inputs_start_at_zero_so_the_model_is_unchanged():
    unet = build_stack(StackConfig(**{**STACK, "unet_channels": (16, 32)}), seed=1)["unet"].eval()
    wide = add_edit_inputs(unet, 48, 4).eval()
    assert wide.config.in_channels == 128 and unet_inputs(wide, 48, 4).edits
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 16, 16, generator=gen)
    text = torch.randn(2, 8, 32, generator=gen)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        before = unet(x, t, encoder_hidden_states=text).sample
        after = wide(
            torch.cat([x, torch.randn(2, 64, 16, 16, generator=gen)], 1), t, encoder_hidden_states=text
        ).sample
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="can edit already"):
        add_edit_inputs(wide, 48, 4)


def test_training_masks_cover_chosen_boxes_or_the_whole_image():
    boxes = torch.zeros(3, 4, 4)
    boxes[0, 0] = torch.tensor([10.0, 12.0, 40.0, 20.0])
    boxes[1, :2] = torch.tensor([[5.0, 5.0, 30.0, 15.0], [5.0, 30.0, 50.0, 45.0]])  # sample 2: no boxes
    masks = edit_masks(boxes, 64, 0.0, torch.Generator().manual_seed(0), max_margin=0.0)
    assert masks.shape == (3, 1, 64, 64)
    only = torch.zeros(64, 64)
    only[12:20, 10:40] = 1
    assert torch.equal(masks[0, 0], only)  # the one box, exactly (no margin)
    assert masks[1].sum() in (25 * 10, 45 * 15, 25 * 10 + 45 * 15)  # a non-empty subset of the two boxes
    assert torch.all(masks[2] == 1)  # nothing to mask but everything: generation
    assert torch.all(edit_masks(boxes, 64, 1.0, torch.Generator().manual_seed(0)) == 1)
    grown = edit_masks(boxes[:1], 64, 0.0, torch.Generator().manual_seed(0), max_margin=0.3)
    assert grown[0, 0, 12:20, 10:40].all() and grown.sum() >= only.sum()  # margins only grow the box
    again = edit_masks(boxes, 64, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(again, edit_masks(boxes, 64, 0.5, torch.Generator().manual_seed(3)))  # seeded


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("edit_model") / "simple"
    write_synthetic(root, n=8, size=64, seed=0, shard_size=4)
    return root


def _train(shards, out, *extra):
    return tc.main([
        "--train_unet", "--train_text_encoder", "--train_shards", str(shards), "--output_dir", str(out),
        "--train_batch_size", "2", "--learning_rate", "1e-3", "--lr_warmup_steps", "0", "--report_to", "none",
        "--validation_steps", "0", "--num_threads", "1", "--dataloader_num_workers", "0", "--in_memory",
        "--glyph_source", "mask", *extra,
    ])  # fmt: skip


def test_an_editing_model_trains_from_scratch_and_from_a_glyph_model(shards, tmp_path):
    stack = json.dumps({**STACK, "inpaint": True})
    summary = _train(shards, tmp_path / "scratch", "--init_config", stack, "--max_train_steps", "3",
                     "--whole_mask_share", "0.5", "--timestep_sampling", "logit_normal")  # fmt: skip
    assert summary["global_step"] == 3
    log = [json.loads(line) for line in (tmp_path / "scratch" / "train_log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in log)
    pipe = PosterPipeline.from_pretrained(tmp_path / "scratch" / "pipeline", local_files_only=True)
    assert pipe.edits_natively
    a = pipe('a sign that reads "OPEN"', seed=0, progress=False, num_inference_steps=2).images[0]
    b = pipe('a sign that reads "OPEN"', seed=0, progress=False, num_inference_steps=2).images[0]
    assert a.size == (64, 64) and np.array_equal(np.asarray(a), np.asarray(b))

    _train(shards, tmp_path / "glyph", "--init_config", json.dumps(STACK), "--max_train_steps", "1")
    _train(shards, tmp_path / "widened", "--pretrained_model", str(tmp_path / "glyph" / "pipeline"),
           "--local_files_only", "--add_edit_inputs", "--max_train_steps", "2")  # fmt: skip
    widened = PosterPipeline.from_pretrained(tmp_path / "widened" / "pipeline", local_files_only=True)
    assert (
        widened.edits_natively and not PosterPipeline.from_pretrained(tmp_path / "glyph" / "pipeline").edits_natively
    )


def test_add_edit_inputs_needs_a_loaded_model(shards, tmp_path, capsys):
    code = cli.main(["train-controlnet", "--init_config", json.dumps(STACK), "--train_unet", "--add_edit_inputs",
                     "--train_shards", str(shards), "--output_dir", str(tmp_path / "x")])  # fmt: skip
    assert code != 0 and "--add_edit_inputs widens a loaded --pretrained_model" in capsys.readouterr().err


def test_a_native_edit_shows_the_model_the_image_around_the_hole(monkeypatch):
    pipe = _pipe(inpaint=True)
    seen = _spy_conditions(monkeypatch)
    image = _poster()
    result = edit_image(pipe, image, EDIT, seed=0)
    before, after = np.asarray(image), np.asarray(result.image)
    inside = np.asarray(result.mask) > 0
    assert np.array_equal(before[~inside], after[~inside]) and not np.array_equal(before[inside], after[inside])
    (condition,) = seen
    glyph, known, holes = condition[:, :16], condition[:, 16:64], condition[:, 64:]
    assert glyph.sum() > 0  # the new word's ink
    cells = holes.amax(dim=1)[0] > 0  # latent cells with any masked pixel
    assert 0 < cells.float().mean() < 1  # a hole in a known window, not generation's all-masked canvas
    assert torch.all(known[0][:, holes.amin(dim=1)[0] == 1] == 0)  # nothing of the old text is shown
    assert known[0][:, ~cells].abs().sum() > 0  # the surroundings are

    blended = edit_image(pipe, image, EDIT, seed=0, method="blend")
    assert not np.array_equal(np.asarray(blended.image), after)  # the other route, on the same weights
    assert np.array_equal(before[~inside], np.asarray(blended.image)[~inside])


def test_generation_with_an_editing_model_masks_everything(monkeypatch):
    pipe = _pipe(inpaint=True)
    seen = _spy_conditions(monkeypatch)
    pipe('a sign that reads "OPEN"', seed=0, progress=False)
    (condition,) = seen
    assert torch.all(condition[:, 64:] == 1) and torch.all(condition[:, 16:64] == 0)


def test_native_edits_need_a_model_that_learnt_to_edit(tmp_path, capsys):
    glyph_only = _pipe(inpaint=False)
    with pytest.raises(ValueError, match="method='native' needs a model trained to edit"):
        edit_image(glyph_only, _poster(), EDIT, method="native")
    with pytest.raises(ValueError, match="method must be one of"):
        edit_image(glyph_only, _poster(), EDIT, method="paint")
    glyph_only.save_pretrained(tmp_path / "model")
    _poster().save(tmp_path / "in.png")
    code = cli.main(["edit", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--box", "6,25,51,42",
                     "--text", "SALE", "--model", str(tmp_path / "model"), "--method", "native"])  # fmt: skip
    assert code != 0 and "needs a model trained to edit" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_an_sd_inpainting_unet_is_fed_by_diffusers_not_as_a_glyph_input():
    """SD1.5-inpainting's UNet takes 9 channels (latent 4 + mask 1 + masked image 4): the SD route, not textgen's."""
    from diffusers import StableDiffusionControlNetInpaintPipeline, UNet2DConditionModel

    from tests.stacks import tiny_sd

    parts = tiny_sd(space="vae").components
    parts["unet"] = UNet2DConditionModel.from_config({**parts["unet"].config, "in_channels": 9})
    pipe = PosterPipeline(
        StableDiffusionControlNetInpaintPipeline(**parts), config=PipelineConfig(num_inference_steps=2)
    )  # fmt: skip
    assert pipe.inpaints and not pipe.edits_natively and pipe.unet_inputs() == UNetInputs()
    image = _poster()
    result = edit_image(pipe, image, EDIT, seed=0)
    inside = np.asarray(result.mask) > 0
    assert np.array_equal(np.asarray(image)[~inside], np.asarray(result.image)[~inside])
    assert pipe('a sign that reads "OPEN"', seed=0, progress=False).images[0].size == (64, 64)


def test_the_default_route_is_the_one_the_model_saved():
    from textgen.edit import edit_route

    pipe = _pipe(inpaint=True)
    assert edit_route(pipe) == "native" and edit_route(pipe, "blend") == "blend"
    pipe.config.edit_method = "blend"  # what a model whose blended edits measured better saves
    assert edit_route(pipe) == "blend" and edit_route(pipe, "native") == "native"
    image = _poster()
    by_default = edit_image(pipe, image, EDIT, seed=0)
    assert np.array_equal(
        np.asarray(by_default.image), np.asarray(edit_image(pipe, image, EDIT, seed=0, method="blend").image)
    )
    glyph_only = _pipe(inpaint=False)
    assert edit_route(glyph_only) == "blend"
    glyph_only.config.edit_method = "native"
    with pytest.raises(ValueError, match="needs a model trained to edit"):
        edit_route(glyph_only)
    with pytest.raises(ValueError, match="edit_method must be"):
        PipelineConfig(edit_method="paint")
