"""Trainer options the legibility study uses: no ControlNet, stored-ink glyphs, in-memory data with a curriculum,
logit-normal timesteps, the text-perceptual (OCR) loss, the time budget and divergence (CPU, offline)."""

import json

import numpy as np
import pytest
import torch

from data_prep.synth import write_synthetic
from textgen import train_controlnet as tc
from textgen.recognizer import RecognizerConfig, WordRecognizer

NO_CONTROLNET = json.dumps(
    {"resolution": 64, "unet_channels": [16, 32], "text_width": 32, "max_text_length": 128, "glyph_concat": True,
     "controlnet": False}
)  # fmt: skip


pytestmark = pytest.mark.usefixtures("fresh_accelerator")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    write_synthetic(root / "simple", n=8, size=64, seed=0, shard_size=4)
    write_synthetic(root / "easy", n=8, size=64, seed=1, shard_size=4, mode="easy")
    torch.manual_seed(0)
    WordRecognizer(RecognizerConfig(channels=(8, 8, 16, 16), hidden=16)).save_pretrained(root / "recognizer")
    return root


def _args(data, out, *extra):
    return [
        "--init_config", NO_CONTROLNET, "--train_unet", "--train_text_encoder",
        "--train_shards", str(data / "simple"), "--output_dir", str(out), "--train_batch_size", "2",
        "--learning_rate", "1e-3", "--lr_warmup_steps", "0", "--report_to", "none", "--validation_steps", "0",
        "--num_threads", "1", "--dataloader_num_workers", "0", "--in_memory", "--glyph_source", "mask",
        *extra,
    ]  # fmt: skip


def _log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_glyph_input_model_without_controlnet_trains_with_every_study_option(data, tmp_path):
    from textgen.pipeline import PosterPipeline

    out = tmp_path / "run"
    summary = tc.main(
        _args(data, out, "--max_train_steps", "4", "--curriculum_shards", str(data / "easy"),
              "--curriculum_steps", "2", "--timestep_sampling", "logit_normal", "--ocr_loss_weight", "0.1",
              "--recognizer", str(data / "recognizer"), "--use_ema", "--save_dtype", "fp16")
    )  # fmt: skip
    assert summary["global_step"] == 4
    assert set(summary["outputs"]) == {"pipeline"}  # no ControlNet to save
    log = _log(out)
    assert all(np.isfinite(r["loss"]) for r in log)
    assert all(r["ocr_loss"] > 0 for r in log)  # the recognizer read the predicted clean images
    pipeline_dir = out / "pipeline"
    assert not (pipeline_dir / "controlnet").exists()
    index = json.loads((pipeline_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and "controlnet" not in index

    pipe = PosterPipeline.from_pretrained(pipeline_dir, local_files_only=True)
    assert pipe.controlnet is None
    a = pipe('a sign that reads "OPEN"', seed=0, num_inference_steps=2, progress=False)
    b = pipe('a sign that reads "OPEN"', seed=0, num_inference_steps=2, progress=False)
    blank = pipe('a sign that reads "OPEN"', seed=0, num_inference_steps=2, progress=False,
                 controlnet_conditioning_scale=0.0)  # fmt: skip
    assert a.images[0].size == (64, 64)
    assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
    assert not np.array_equal(np.asarray(a.images[0]), np.asarray(blank.images[0]))  # the glyph reaches the UNet


def test_in_memory_training_resumes_exactly(data, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    tc.main(_args(data, straight, "--max_train_steps", "4", "--checkpointing_steps", "2"))
    tc.main(_args(data, split, "--max_train_steps", "2", "--checkpointing_steps", "2"))
    tc.main(_args(data, split, "--max_train_steps", "4", "--checkpointing_steps", "2",
                  "--resume_from_checkpoint", "latest"))  # fmt: skip
    a, b = _log(straight), _log(split)
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-5)


def test_curriculum_draws_from_the_first_stage_set_first(data, tmp_path):
    args = tc.parse_args(
        _args(data, tmp_path / "c", "--max_train_steps", "3", "--curriculum_shards", str(data / "easy"),
              "--curriculum_steps", "2")
    )  # fmt: skip
    trainer = tc.ControlNetTrainer(args)
    trainer.setup()
    easy = set(trainer.memory["curriculum"].captions)
    simple = set(trainer.memory["train"].captions)
    firsts = [set(trainer.next_batch(i, None)["caption"]) - {""} for i in range(4)]
    assert firsts[0] <= easy and firsts[1] <= easy
    assert firsts[2] <= simple and firsts[3] <= simple


def test_time_budget_stops_and_saves(data, tmp_path):
    out = tmp_path / "budget"
    summary = tc.main(_args(data, out, "--max_train_steps", "50", "--max_train_seconds", "0.001"))
    assert summary["global_step"] == 1
    assert (out / "pipeline" / "model_index.json").is_file()


def test_divergence_stops_with_a_clear_error(data, tmp_path):
    with pytest.raises(FloatingPointError, match=r"the loss became (nan|inf) at step \d+: training diverged"):
        tc.main(_args(data, tmp_path / "nan", "--max_train_steps", "30", "--learning_rate", "1e30",
                      "--max_grad_norm", "0", "--adam_epsilon", "1e-30"))  # fmt: skip


def test_logit_normal_timesteps_concentrate_on_mid_noise():
    g = torch.Generator().manual_seed(0)
    uniform = tc.sample_timesteps("uniform", 20000, 1000, g, "cpu")
    mid = tc.sample_timesteps("logit_normal", 20000, 1000, g, "cpu")
    assert int(mid.min()) >= 0 and int(mid.max()) <= 999
    share = lambda t: ((t >= 250) & (t < 750)).float().mean().item()  # noqa: E731
    assert share(uniform) == pytest.approx(0.5, abs=0.02)
    assert share(mid) > 0.65
    with pytest.raises(ValueError, match="unknown timestep sampling"):
        tc.sample_timesteps("cosine", 4, 1000, g, "cpu")


def test_predicted_clean_inverts_each_parametrisation():
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    x0, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t = torch.tensor([10, 500, 990])
    noisy = scheduler.add_noise(x0, noise, t)
    for kind in ("epsilon", "v_prediction", "sample"):
        target = tc.loss_target(scheduler, x0, noise, t, kind)
        assert torch.allclose(tc.predicted_clean(scheduler, target, noisy, t, kind), x0, atol=1e-3), kind


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--curriculum_shards", "X", "--curriculum_steps", "0"], "go together"),
        (["--ocr_loss_weight", "0.1"], "needs --recognizer"),
        (["--timestep_sampling", "cosine"], "invalid choice"),
    ],
)
def test_bad_study_options_are_refused(data, tmp_path, extra, message, capsys):
    with pytest.raises((ValueError, SystemExit)) as info:
        tc.main(_args(data, tmp_path / "bad", "--max_train_steps", "1", *extra))
    assert message in str(info.value) + capsys.readouterr().err


def test_curriculum_needs_in_memory_data(data, tmp_path):
    argv = [a for a in _args(data, tmp_path / "x", "--max_train_steps", "1") if a != "--in_memory"]
    with pytest.raises(ValueError, match="--curriculum_shards needs --in_memory"):
        tc.main(argv + ["--curriculum_shards", str(data / "easy"), "--curriculum_steps", "1"])


def test_no_controlnet_needs_a_glyph_path():
    from textgen.models import StackConfig, build_stack

    with pytest.raises(ValueError, match="needs glyph_concat=True"):
        build_stack(StackConfig(controlnet=False, glyph_concat=False))


def test_learning_happens_a_tiny_stack_memorises_four_samples(tmp_path):
    """Not just finite losses: on four samples the loss over the last steps falls far below the first steps'."""
    root = tmp_path / "four"
    write_synthetic(root, n=4, size=64, seed=3, shard_size=4, mode="easy")
    out = tmp_path / "run"
    tc.main(
        _args(root.parent, out, "--max_train_steps", "150", "--caption_dropout", "0")
        + ["--train_shards", str(root), "--train_batch_size", "4", "--learning_rate", "2e-3"]
    )
    losses = [r["loss"] for r in _log(out)]
    first, last = np.mean(losses[:15]), np.mean(losses[-15:])
    assert last < 0.35 * first, (first, last)


@pytest.mark.gpu
@pytest.mark.parametrize("speed", [{"dtype": "fp16"}, {"dtype": "bf16", "compile": True}, {"cpu_offload": "model"}])
def test_speed_options_on_a_gpu(data, tmp_path, speed):
    """The opt-in speed-ups (fp16/bf16, torch.compile, CPU offload) generate the same kind of image on CUDA."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from textgen.pipeline import PosterPipeline, SpeedOptions

    out = tmp_path / "run"
    tc.main(_args(data, out, "--max_train_steps", "2"))
    device = None if speed.get("cpu_offload") else "cuda"
    pipe = PosterPipeline.from_pretrained(out / "pipeline", local_files_only=True, device=device,
                                          speed=SpeedOptions(**speed))  # fmt: skip
    image = pipe('a sign that reads "OPEN"', seed=0, num_inference_steps=2, progress=False).images[0]
    assert image.size == (64, 64) and np.asarray(image).std() > 0
