"""textgen.train_controlnet: a few real training steps on synthetic shards, on CPU, offline.

Every run here uses tiny stacks (UNet (32, 64) at 64x64, ~1-2 M parameters), so a training step takes well under
a second; the point is the plumbing a user relies on: data, loss, checkpoints, exact resume, validation, outputs.
"""

import io
import json
import logging
import tarfile
from itertools import islice

import numpy as np
import pytest
import torch
from PIL import Image

from data_prep.synth import write_synthetic
from textgen import cli
from textgen import train_controlnet as tc
from textgen import train_data as td
from textgen.core.glyph import render_glyph
from textgen.core.layout import Layout, TextBox
from textgen.core.shards import TripleRecord, encode_image, iter_triples, write_triple
from textgen.models import StackConfig, build_char_tokenizer, build_stack

TINY = '{"resolution": 64}'


# ------------------------------------------------------------------------------------------------ fixtures
pytestmark = pytest.mark.usefixtures("fresh_accelerator")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    write_synthetic(root / "train", n=16, size=64, seed=0, shard_size=4)
    write_synthetic(root / "val", n=2, size=64, seed=123, shard_size=4)
    return root


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A saved Stable-Diffusion-shaped base, as `StableDiffusionControlNetPipeline.save_pretrained` writes it."""
    from tests.stacks import tiny_sd

    path = tmp_path_factory.mktemp("base") / "sd"
    tiny_sd(live_controlnet=False).save_pretrained(path, safe_serialization=True)
    return path


def _args(data, out, *extra):
    return [
        "--train_shards", str(data / "train"),
        "--output_dir", str(out),
        "--train_batch_size", "2",
        "--learning_rate", "1e-3",
        "--lr_warmup_steps", "0",
        "--report_to", "none",
        "--validation_steps", "0",
        "--num_threads", "1",
        "--dataloader_num_workers", "0",
        "--shuffle_buffer", "4",
        *extra,
    ]  # fmt: skip


def _log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def _weights(folder):
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert len(files) == 1, files
    return load_file(str(files[0]))


class TinyPlanner:
    """Stands in for a layout planner: one centred box with the quoted word."""

    def plan(self, prompt, texts=None, width=64, height=64, seed=0):
        word = (texts or [prompt.split('"')[1]])[0]
        return Layout(width, height, (TextBox(word, (0.1, 0.3, 0.9, 0.7)),), caption=prompt)


# ------------------------------------------------------------------------------------------ training runs
def test_frozen_base_trains_the_controlnet_and_validates(tiny_base, data, tmp_path):
    from diffusers import ControlNetModel

    out = tmp_path / "run"
    summary = tc.main(
        _args(data, out)
        + ["--pretrained_model", str(tiny_base), "--local_files_only", "--max_train_steps", "3"]
        + ["--checkpointing_steps", "2", "--snr_gamma", "5", "--gradient_checkpointing"]
        + ["--gradient_accumulation_steps", "2"]
        + ["--validation_steps", "2", "--validation_shards", str(data / "val"), "--num_validation_samples", "2"]
        + ["--validation_inference_steps", "2", "--validation_ocr", "none", "--report_to", "tensorboard"]
    )

    assert summary["global_step"] == 3
    assert set(summary["outputs"]) == {"controlnet"}  # the base was frozen: nothing else to save
    assert not (out / "pipeline").exists()
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2, 3]
    assert [r["samples"] for r in log] == [4, 8, 12]  # batch 2 x accumulation 2
    assert all(np.isfinite(r["loss"]) and r["lr"] == pytest.approx(1e-3) for r in log)
    assert log[0]["seconds"] < log[1]["seconds"] < log[2]["seconds"]
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-2", "checkpoint-3"}

    controlnet = ControlNetModel.from_pretrained(out / "controlnet")
    assert controlnet.dtype == torch.float32
    # from_unet starts the ControlNet's output convolutions at zero (a no-op); training moved them.
    zero_conv = controlnet.controlnet_mid_block.weight
    assert zero_conv.abs().sum() > 0
    assert tuple(controlnet.config.conditioning_embedding_out_channels) == (16, 32, 96)  # f=4 space

    # Validation: at step 2 and at the end; rows = layouts, columns = glyph + 2 images.
    grids = sorted((out / "validation").glob("step_*.png"))
    assert [g.name for g in grids] == ["step_000002.png", "step_000003.png"]
    grid = Image.open(grids[0])
    assert grid.size == (3 * 64, 2 * 64)
    glyph_cell = np.asarray(grid.convert("L"))[:64, :64]
    assert glyph_cell.mean() > 128 and glyph_cell.min() < 64  # black text on white
    scores = [json.loads(line) for line in (out / "validation" / "scores.jsonl").read_text().splitlines()]
    assert [s["step"] for s in scores] == [2, 3] and len(scores[0]["prompts"]) == 2
    assert list((out / "logs").rglob("events.out.tfevents.*"))


def test_from_scratch_joint_training_resumes_exactly_and_saves_a_pipeline(data, tmp_path):
    from textgen.pipeline import PosterPipeline

    common = [
        "--init_config", TINY, "--train_unet", "--train_text_encoder", "--use_ema", "--ema_decay", "0.9",
        "--checkpointing_steps", "2", "--dataloader_num_workers", "2",
    ]  # fmt: skip
    straight, split = tmp_path / "straight", tmp_path / "split"

    def run(out, *extra):
        return tc.main(_args(data, out, *common, *extra))

    run(straight, "--max_train_steps", "4")
    first = run(split, "--max_train_steps", "3", "--checkpoints_total_limit", "1")
    assert first["global_step"] == 3
    assert [p.name for p in split.glob("checkpoint-*")] == ["checkpoint-3"]  # the limit removed checkpoint-2
    resumed = run(split, "--max_train_steps", "4", "--resume_from_checkpoint", "latest")

    # The resumed run continued from the saved step (3 is odd: with 2 workers, the data order has to rotate)...
    assert resumed["global_step"] == 4
    assert [r["step"] for r in _log(split)] == [1, 2, 3, 4]
    assert [r["loss"] for r in _log(split)] == [r["loss"] for r in _log(straight)]
    # ...and ends with exactly the weights of the uninterrupted run (data position, noise, optimizer, EMA).
    for part in ("unet", "controlnet", "text_encoder"):
        a, b = _weights(straight / "pipeline" / part), _weights(split / "pipeline" / part)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), part

    # What is saved is the EMA (kept in the last checkpoint), not the raw weights the optimizer left.
    from safetensors.torch import load_file

    trained = _weights(split / "pipeline" / "unet")
    state = load_file(str(split / "checkpoint-4" / "ema.safetensors"))
    assert all(torch.equal(state[f"ema.unet.{k}"], v) for k, v in trained.items())
    raw = [load_file(str(f)) for f in sorted((split / "checkpoint-4").glob("model*.safetensors"))]
    raw_unet = next(w for w in raw if w.keys() == trained.keys())
    assert any(not torch.equal(raw_unet[k], trained[k]) for k in trained)

    init = build_stack(StackConfig(resolution=64), seed=0)["unet"].state_dict()
    assert any(not torch.equal(init[k], trained[k]) for k in init)

    pipe = PosterPipeline.from_pretrained(split / "pipeline", planner=TinyPlanner(), local_files_only=True)
    out = pipe('a sign that reads "OPEN"', num_inference_steps=2, seed=0, progress=False)
    assert out.images[0].size == (64, 64)
    assert out.layout.texts == ["OPEN"]
    assert pipe.config.height == 64 and pipe.control == "glyph"


def test_bf16_from_scratch_trains_and_validates(data, tmp_path):
    """bf16 on CPU: frozen parts in bf16 under autocast, trained parts fp32, validation on bf16 copies."""
    out = tmp_path / "run"
    summary = tc.main(
        _args(data, out, "--init_config", TINY, "--train_unet", "--max_train_steps", "1", "--checkpointing_steps", "0")
        + ["--mixed_precision", "bf16", "--validation_steps", "1", "--validation_shards", str(data / "val")]
        + ["--num_validation_samples", "1", "--num_validation_images", "1", "--validation_inference_steps", "1"]
        + ["--validation_ocr", "none"]
    )
    assert summary["global_step"] == 1 and np.isfinite(_log(out)[0]["loss"])
    assert Image.open(out / "validation" / "step_000001.png").size == (128, 64)
    # Trained in fp32, saved in fp32 (--save_dtype), the frozen text encoder at its original precision.
    assert all(v.dtype == torch.float32 for v in _weights(out / "pipeline" / "unet").values())
    init = build_stack(StackConfig(resolution=64), seed=0)["text_encoder"].state_dict()
    saved = _weights(out / "pipeline" / "text_encoder")
    assert all(torch.equal(init[k], saved[k]) for k in saved)


def test_resume_latest_without_checkpoint_starts_a_new_run(data, tmp_path):
    out = tmp_path / "run"
    summary = tc.main(
        _args(data, out, "--init_config", TINY, "--train_unet", "--max_train_steps", "1", "--checkpointing_steps", "0")
        + ["--resume_from_checkpoint", "latest", "--save_dtype", "fp16"]
    )
    assert summary["global_step"] == 1 and not list(out.glob("checkpoint-*"))
    assert all(v.dtype == torch.float16 for v in _weights(out / "pipeline" / "unet").values())


# ------------------------------------------------------------------------------------------------- bad input
def _empty_shard(folder):
    folder.mkdir()
    with tarfile.open(folder / "00000.tar", "w"):
        pass
    return folder


@pytest.mark.parametrize(
    "extra, error, message",
    [
        (["--init_config", TINY, "--train_unet", "--train_shards", "{tmp}/missing"], FileNotFoundError, "missing"),
        (["--init_config", TINY, "--train_unet", "--train_shards", "{empty}"], ValueError, "no samples"),
        (["--init_config", TINY, "--pretrained_model", "x", "--train_unet"], ValueError, "exactly one of"),
        (["--init_config", TINY], ValueError, "--train_unet"),
        (["--init_config", '{"resolution": 64, "colour": 1}', "--train_unet"], ValueError, "'colour'"),
        (["--init_config", TINY, "--train_unet", "--caption_dropout", "2"], ValueError, "caption_dropout"),
        (["--init_config", "{not json", "--train_unet"], ValueError, "invalid JSON"),
        (["--init_config", TINY, "--train_unet", "--text_loss_weight", "-1"], ValueError, "text_loss_weight"),
        (["--pretrained_model", "x", "--prediction_type", "epsilon"], ValueError, "needs --train_unet"),
    ],
)
def test_bad_input_fails_with_a_clear_message(data, tmp_path, extra, error, message):
    empty = _empty_shard(tmp_path / "empty")
    extra = [e.replace("{tmp}", str(tmp_path)).replace("{empty}", str(empty)) for e in extra]
    with pytest.raises(error, match=message):
        tc.main(_args(data, tmp_path / "out", "--max_train_steps", "1") + extra)


def test_8bit_adam_without_bitsandbytes_says_what_to_install(data, tmp_path):
    try:
        import bitsandbytes  # noqa: F401

        pytest.skip("bitsandbytes is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="pip install bitsandbytes"):
        tc.main(_args(data, tmp_path / "out", "--init_config", TINY, "--train_unet", "--use_8bit_adam"))


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert "train-controlnet" in cli.COMMANDS
    code = cli.main(["train-controlnet", "--init_config", TINY, "--train_unet"]
                    + ["--train_shards", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_BAD_INPUT
    assert err.startswith("textgen train-controlnet: error:") and "nope" in err and "\n" not in err


def test_fp16_on_cpu_is_refused(data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("fp16 is valid on a GPU")
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        tc.main(_args(data, tmp_path / "out", "--init_config", TINY, "--train_unet", "--mixed_precision", "fp16"))


# ------------------------------------------------------------------------------------------------------ data
def _stream(paths, **kwargs):
    defaults = dict(resolution=64, tokenizer=build_char_tokenizer(128), shuffle_buffer=1, seed=0)
    return td.GlyphTripleStream(paths, **{**defaults, **kwargs})


def test_stream_yields_image_glyph_and_training_caption(data):
    from textgen.core.shards import shard_paths

    paths = shard_paths(data / "train")
    sample = next(iter(_stream(paths[:1])))  # buffer 1 and one shard: the shard's first triple
    triple = next(iter_triples(paths[0]))
    assert sample["caption"] == triple.caption and '"' in sample["caption"]  # the form with the words
    assert sample["pixel_values"].shape == (3, 64, 64) and sample["pixel_values"].dtype == torch.uint8
    assert np.array_equal(sample["pixel_values"].permute(1, 2, 0).numpy(), np.asarray(triple.image.convert("RGB")))
    expected = np.asarray(render_glyph(triple.layout, size=(64, 64)).convert("L"))
    assert np.array_equal(sample["conditioning"].numpy(), expected)
    assert expected.mean() > 128 and expected.min() < 64
    tokenizer = build_char_tokenizer(128)
    assert sample["input_ids"].tolist() == tokenizer(triple.caption, padding="max_length", max_length=128).input_ids


def test_caption_dropout_gives_empty_prompts(data):
    from textgen.core.shards import shard_paths

    samples = list(islice(iter(_stream(shard_paths(data / "train"), caption_dropout=1.0)), 3))
    empty = build_char_tokenizer(128)("", padding="max_length", max_length=128).input_ids
    assert all(s["caption"] == "" and s["input_ids"].tolist() == empty for s in samples)


@pytest.mark.parametrize("n_shards", [1, 4])  # fewer shards than slots: split by sample; else by shard
def test_data_slots_partition_an_epoch(data, n_shards):
    from textgen.core.shards import shard_paths

    paths = shard_paths(data / "train")[:n_shards]
    stream = _stream(paths)
    total = sum(1 for p in paths for _ in td._iter_raw(p))
    keys = []
    for slot in range(2):
        per_slot = total // 2
        keys.append({key for _, key, _ in islice(stream.raw_stream(slot, 2), per_slot)})
    assert not keys[0] & keys[1]
    assert len(keys[0] | keys[1]) == total


def test_non_square_images_are_cropped_with_their_glyph(tmp_path):
    import webdataset as wds

    image = Image.new("RGB", (96, 64), "white")
    layout = Layout(96, 64, (TextBox("HI", (0.0, 0.1, 1 / 3, 0.9)),))  # the left third of the canvas
    record = TripleRecord(key="wide", width=96, height=64, layout=layout, caption="a wide card")
    with wds.TarWriter(str(tmp_path / "00000.tar")) as tar:
        write_triple(tar, record, encode_image(image), "png")
    sample = next(iter(_stream([tmp_path / "00000.tar"])))
    ink_columns = np.nonzero((sample["conditioning"].numpy() < 128).any(axis=0))[0]
    assert sample["conditioning"].shape == (64, 64)
    # Centre crop drops 16 columns on each side: the box (columns 0-32) keeps only columns 0-16.
    assert len(ink_columns) and ink_columns.max() < 17


def test_empty_and_corrupt_shards_are_reported(tmp_path):
    empty = _empty_shard(tmp_path / "empty")
    with pytest.raises(ValueError, match="no samples"):
        td.check_shards([empty / "00000.tar"])
    with pytest.raises(ValueError, match="no samples for data slot"):
        next(iter(_stream([empty / "00000.tar"])))
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        payload = b"{not json"
        info = tarfile.TarInfo("k.json")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ValueError, match="invalid JSON"):
        td.check_shards([bad])


def test_truncated_captions_are_reported(data, caplog):
    from textgen.core.shards import shard_paths

    with caplog.at_level(logging.WARNING, logger="textgen.train_data"):
        report = td.check_captions(shard_paths(data / "train"), build_char_tokenizer(32), n=4)
    assert report["truncated"] == 4 and report["longest"] > 32
    assert "max_text_length" in caplog.text
    assert td.check_captions(shard_paths(data / "train"), build_char_tokenizer(256), n=4)["truncated"] == 0


# ------------------------------------------------------------------------------------------------------ loss
@pytest.mark.parametrize("gamma", [1.0, 5.0])
def test_min_snr_weights_agree_across_prediction_types(gamma):
    """Weighted epsilon, v and sample losses are the same Min-SNR loss on the clean-sample error."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64), torch.randn(4, 3, 8, 8, generator=g)
    x0, noise = x0.float(), noise.float()
    t = torch.tensor([5, 200, 600, 990])
    x0_hat = x0 + 0.1 * torch.randn(x0.shape, generator=g)
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    a, s = abar.sqrt(), (1 - abar).sqrt()
    xt = a * x0 + s * noise
    eps_hat = (xt - a * x0_hat) / s
    v_hat = a * eps_hat - s * x0_hat
    preds = {"sample": x0_hat, "epsilon": eps_hat, "v_prediction": v_hat}
    snr = (abar / (1 - abar)).flatten()
    expected = torch.minimum(snr, torch.tensor(gamma)) * ((x0 - x0_hat) ** 2).mean(dim=(1, 2, 3))
    for kind, pred in preds.items():
        target = tc.loss_target(scheduler, x0, noise, t, kind)
        mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
        weighted = mse * tc.snr_loss_weights(scheduler, t, gamma, kind)
        assert torch.allclose(weighted, expected, rtol=2e-3), kind
    with pytest.raises(ValueError, match="unknown prediction type"):
        tc.loss_target(scheduler, x0, noise, t, "noise")


def test_text_region_weights_cover_the_ink_and_one_cell_around_it():
    ink = torch.zeros(2, 1, 16, 16)
    ink[0, 0, 5, 5] = 1.0  # one ink pixel in latent cell (1, 1) of a 4x4 grid
    weights = tc.text_region_weights(ink, (4, 4), 3.0)
    assert weights.shape == (2, 1, 4, 4)
    expected = torch.ones(4, 4)
    expected[0:3, 0:3] = 4.0  # the cell and its neighbours
    assert torch.equal(weights[0, 0], expected)
    assert torch.equal(weights[1, 0], torch.ones(4, 4))  # no text: plain MSE


def test_text_loss_weight_raises_the_loss_on_text(data, tmp_path):
    """Same seed, same first batch: weighting the text cells can only add to the loss (every glyph has ink)."""

    def first_loss(out, *extra):
        tc.main(_args(data, out, "--init_config", TINY, "--train_unet", "--max_train_steps", "1", *extra))
        return _log(out)[0]["loss"]

    plain = first_loss(tmp_path / "plain")
    weighted = first_loss(tmp_path / "weighted", "--text_loss_weight", "4")
    assert weighted > plain * 1.05


def test_text_embedding_cache_encodes_each_caption_once():
    calls = []

    class Encoder(torch.nn.Module):
        def forward(self, ids, return_dict=False):
            calls.append(ids.shape[0])
            return (ids.float().unsqueeze(-1).repeat(1, 1, 2),)

    cache = tc.TextEmbeddingCache(Encoder(), max_items=2)
    ids = torch.tensor([[1, 2], [3, 4], [1, 2]])
    out = cache(["a", "b", "a"], ids)
    assert calls == [2]  # "a" once, "b" once
    assert torch.equal(out, ids.float().unsqueeze(-1).repeat(1, 1, 2))
    cache(["a", "a"], ids[[0, 2]])
    assert calls == [2] and cache.hits == 3
    cache(["c"], torch.tensor([[5, 6]]))
    assert list(cache.items) == ["a", "c"]  # least recently used "b" evicted


# ------------------------------------------------------------------------------------------------ validation
def test_validation_ocr_reads_glyph_images_perfectly():
    pytest.importorskip("rapidocr")
    engine = tc.load_ocr_engine("rapidocr")
    if engine is None:
        pytest.skip("rapidocr could not load")
    layouts = [
        Layout(256, 256, (TextBox("OPEN", (0.1, 0.1, 0.9, 0.4)), TextBox("SALE", (0.1, 0.55, 0.9, 0.85)))),
        Layout(256, 256, (TextBox("HELLO", (0.05, 0.3, 0.95, 0.7)),)),
    ]
    glyphs = [render_glyph(layout) for layout in layouts]
    scores = tc.ocr_scores(glyphs, layouts, engine)
    assert scores["lines"] == 3
    assert scores["sentence_accuracy"] == 1.0 and scores["ned"] == 1.0


def test_unavailable_ocr_engine_is_skipped_with_a_note(caplog):
    with caplog.at_level(logging.WARNING, logger="textgen.train_controlnet"):
        assert tc.load_ocr_engine("no-such-engine") is None
        assert tc.load_ocr_engine("none") is None
    assert "no-such-engine" in caplog.text and "without OCR scores" in caplog.text


def test_validation_layouts_file(tmp_path):
    path = tmp_path / "layouts.json"
    layout = Layout(128, 128, (TextBox("OPEN", (0.1, 0.1, 0.9, 0.5)),))
    path.write_text(json.dumps([{"prompt": 'a sign that reads "OPEN"', "layout": layout.to_dict()}, layout.to_dict()]))
    samples = tc.load_validation_samples(tc.DataArgs(train_shards=["x"], validation_layouts=str(path)))
    assert [s.prompt for s in samples] == ['a sign that reads "OPEN"', '"OPEN"']
    assert samples[0].layout.texts == ["OPEN"]
    path.write_text(json.dumps([{"layout": {"boxes": [{"text": "A", "box": [0.5, 0.1, 0.2, 0.3]}]}}]))
    with pytest.raises(ValueError, match="entry 0"):
        tc.load_validation_samples(tc.DataArgs(train_shards=["x"], validation_layouts=str(path)))


def test_parse_args_groups_options_and_accepts_dashes():
    args = tc.parse_args(["--train-shards", "a", "b", "--output_dir", "o", "--init-config", TINY, "--train_unet"])
    assert args.data.train_shards == ["a", "b"] and args.run.output_dir == "o"
    assert args.model.stack_config() == StackConfig(resolution=64)
    assert args.model.train_unet and not args.model.train_text_encoder
    assert args.optim.train_batch_size == 4 and args.run.mixed_precision == "no"


@pytest.mark.slow
def test_two_cpu_processes_train_with_ddp_and_resume_exactly(data, tmp_path):
    """torchrun with 2 CPU processes (gloo DDP): each reads its own share; stop + resume == uninterrupted."""
    import os
    import subprocess
    import sys

    def launch(out, steps, *extra):
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "textgen.train_controlnet",
        ]
        cmd += _args(data, out, "--init_config", TINY, "--train_unet", "--train_text_encoder", "--use_ema")
        cmd += ["--max_train_steps", str(steps), "--checkpointing_steps", "2", "--dataloader_num_workers", "1", *extra]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)

    launch(tmp_path / "straight", 4)
    launch(tmp_path / "split", 3)
    launch(tmp_path / "split", 4, "--resume_from_checkpoint", "latest")
    log = _log(tmp_path / "split")
    assert [r["samples"] for r in log] == [4, 8, 12, 16]  # 2 processes x batch 2
    assert [r["loss"] for r in log] == [r["loss"] for r in _log(tmp_path / "straight")]
    for part in ("unet", "controlnet", "text_encoder"):
        a, b = _weights(tmp_path / "straight" / "pipeline" / part), _weights(tmp_path / "split" / "pipeline" / part)
        assert all(torch.equal(a[k], b[k]) for k in a), part
