"""Training checkpoints survive interrupted saves, damaged files and kill -9 (issue: nothing lost, nothing hung)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_prep.synth import write_synthetic
from textgen import train_controlnet as tc

STACK = json.dumps({"resolution": 64, "unet_channels": [16, 32], "text_width": 32, "max_text_length": 128,
                    "glyph_concat": True, "controlnet": False})  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("fresh_accelerator")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    write_synthetic(root / "train", n=8, size=64, seed=0, shard_size=4)
    return root


def _argv(data, out, steps, *extra):
    return [
        "--init_config", STACK, "--train_unet", "--train_text_encoder", "--train_shards", str(data / "train"),
        "--output_dir", str(out), "--train_batch_size", "2", "--learning_rate", "1e-3", "--lr_warmup_steps", "0",
        "--report_to", "none", "--validation_steps", "0", "--num_threads", "1", "--in_memory",
        "--max_train_steps", str(steps), "--checkpointing_steps", "1", "--checkpoints_total_limit", "1",
        "--resume_from_checkpoint", "latest", *extra,
    ]  # fmt: skip


def _steps(out):
    return [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_a_save_cut_short_never_costs_the_previous_checkpoint(data, tmp_path):
    out = tmp_path / "run"
    tc.main(_argv(data, out, 2))
    assert [p.name for p in tc.list_checkpoints(out)] == ["checkpoint-2"]  # limit 1: the older one pruned after
    # a kill during the save of step 3: its temporary folder is left half-written
    partial = out / ".checkpoint-3.partial"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00" * 10)
    # and an old-style folder whose save never finished (no training_state.json)
    (out / "checkpoint-4").mkdir()
    summary = tc.main(_argv(data, out, 4))
    assert summary["global_step"] == 4
    assert _steps(out) == [1, 2, 3, 4]  # resumed at 2: nothing duplicated, nothing lost
    assert not partial.exists()
    assert [p.name for p in tc.list_checkpoints(out)] == ["checkpoint-4"]
    assert (out / "checkpoint-4" / tc.STATE_NAME).is_file()


@pytest.mark.parametrize("damage", ["truncated_weights", "empty_optimizer", "bad_state"])
def test_damaged_newest_checkpoint_is_skipped_by_latest_and_named_when_asked_for(data, tmp_path, damage, caplog):
    out = tmp_path / "run"
    tc.main(_argv(data, out, 2, "--checkpoints_total_limit", "3"))
    newest = out / "checkpoint-2"
    if damage == "truncated_weights":
        file = newest / "model.safetensors"
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif damage == "empty_optimizer":
        file = newest / "optimizer.bin"
        file.write_bytes(b"")
    else:
        file = newest / tc.STATE_NAME
        file.write_text("{not json")
    with pytest.raises(ValueError) as info:
        tc.main(_argv(data, out, 3, "--resume_from_checkpoint", str(newest)))
    assert str(file) in str(info.value) and "\n" not in str(info.value)
    # latest takes the newest complete one (step 1) and says which it skipped
    summary = tc.main(_argv(data, out, 3, "--checkpoints_total_limit", "3"))
    assert summary["global_step"] == 3
    assert "skipping incomplete or damaged checkpoint-2" in caplog.text
    assert _steps(out) == [1, 2, 3]


def test_only_damaged_checkpoints_is_an_error_not_a_silent_restart(data, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-5").mkdir(parents=True)
    with pytest.raises(ValueError, match="no complete checkpoint to resume from"):
        tc.main(_argv(data, out, 6))


def test_kill_9_at_any_point_resumes_from_the_last_complete_checkpoint(data, tmp_path):
    """Real kill -9s at several moments of a run that checkpoints every step; a rerun always finishes it."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "textgen.cli", "train-controlnet", *_argv(data, out, 8)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for delay in (9.0, 10.5, 12.0):  # start-up is ~8 s here; the kills land in training and in saves
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run(argv, env=env, check=True, capture_output=True, cwd=ROOT)
    steps = _steps(out)
    assert steps == list(range(1, 9))  # every step once, in order
    assert [p.name for p in tc.list_checkpoints(out)] == ["checkpoint-8"]
    assert (out / "pipeline" / "model_index.json").is_file()
