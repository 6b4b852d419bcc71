"""recipes/study.py and recipes/gpu_study.sh at toy sizes on CPU: the harness trains, evaluates and tabulates arms."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes"))

import study  # noqa: E402

TOY = json.dumps({"resolution": 64, "unet_channels": [16, 32], "text_width": 32, "text_layers": 1, "text_heads": 2})


def test_every_arm_is_a_small_diff_against_today_s_recipe():
    assert {"base", "trial", "aligned", "no_controlnet", "easy", "wide", "curriculum", "ocr_loss", "mid_t",
            "no_text_weight", "sampler"} <= set(study.ARMS)  # fmt: skip
    base = study.ARMS["base"]
    assert base.stack == {} and base.train == {} and base.data == "simple" and base.glyph == "render"
    assert study.ARMS["aligned"].glyph == "mask" and study.ARMS["aligned"].stack == {}
    assert study.ARMS["no_controlnet"].stack == {"controlnet": False}
    assert study.ARMS["sampler"].weights_of == "base"


def test_train_command_applies_the_arm_over_the_base(tmp_path):
    paths = {"simple": tmp_path / "s", "easy": tmp_path / "e", "cache": tmp_path / "c"}
    opts = {"workers": 1, "mixed_precision": "no", "recognizer": tmp_path / "rec"}
    cmd = study.train_command("curriculum", 100, 8, paths, tmp_path / "out", opts)
    stack = json.loads(cmd[cmd.index("--init_config") + 1])
    assert stack["unet_channels"] == [48, 96, 192]  # recipes/tiny_stack.json
    assert cmd[cmd.index("--curriculum_shards") + 1] == str(tmp_path / "e")
    assert cmd[cmd.index("--curriculum_steps") + 1] == "50"
    assert cmd[cmd.index("--text_loss_weight") + 1] == "3"
    ocr = study.train_command("ocr_loss", 100, 8, paths, tmp_path / "out", opts)
    assert ocr[ocr.index("--recognizer") + 1] == str(tmp_path / "rec")
    trial = study.train_command("trial", 100, 8, paths, tmp_path / "out", opts)
    trial_stack = json.loads(trial[trial.index("--init_config") + 1])
    assert trial_stack["controlnet"] is False and trial_stack["unet_channels"] == [64, 128, 256]
    assert trial[trial.index("--glyph_source") + 1] == "mask"
    assert trial[trial.index("--train_shards") + 1] == str(tmp_path / "e")


def test_study_trains_evaluates_and_tabulates_an_arm(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    argv = [
        sys.executable, str(ROOT / "recipes" / "study.py"), "aligned_no_controlnet", "--steps", "2", "--batch", "2",
        "--n-train", "8", "--eval-n", "2", "--grid-n", "1", "--size", "64", "--stack", TOY, "--device", "cpu",
        "--data", str(tmp_path / "data"), "--runs", str(tmp_path / "runs"), "--ablation",
    ]  # fmt: skip
    subprocess.run(argv, check=True, env=env, cwd=ROOT, capture_output=True)
    result = json.loads((tmp_path / "runs" / "aligned_no_controlnet_2x2" / "result.json").read_text())
    assert result["trained_steps"] == 2 and result["parameters"] > 0 and result["seconds_per_step"] > 0
    for name in ("planned", "own_layout", "glyph_blanked"):
        assert result[name]["lines"] >= 2 and 0 <= result[name]["sentence_accuracy"] <= 1
    assert Path(result["grid"]).is_file()
    table = study.results_table(tmp_path / "runs")
    assert "| aligned_no_controlnet | 2x2 |" in table
    # a longer budget continues the run from its checkpoint instead of starting over
    more = argv[:]
    more[more.index("--steps") + 1] = "3"
    more += ["--resume-from", str(tmp_path / "runs" / "aligned_no_controlnet_2x2"), "--grid-n", "0"]
    more = [a for a in more if a != "--ablation"]
    subprocess.run(more, check=True, env=env, cwd=ROOT, capture_output=True)
    log = (tmp_path / "runs" / "aligned_no_controlnet_3x2" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3]


@pytest.mark.slow
def test_gpu_script_runs_end_to_end_on_cpu_at_toy_sizes(tmp_path):
    env = {
        **os.environ, "OUT": str(tmp_path / "out"), "DATA": str(tmp_path / "data"), "RUNS": str(tmp_path / "runs"),
        "DEVICE": "cpu", "PRECISION": "no", "STEPS": "2", "BATCH": "2", "STUDY_STEPS": "2", "STUDY_BATCH": "2",
        "N_TRAIN": "8", "EVAL_N": "1", "GRID_N": "0", "ARMS": "aligned_no_controlnet", "PARALLEL": "1",
        "WORKERS": "1", "FINAL": "aligned_no_controlnet", "SIZE": "64", "STACK": TOY, "OMP_NUM_THREADS": "1",
        "NO_ABLATION": "1", "PYTHONPATH": str(ROOT), "RECOGNIZER": str(tmp_path / "none"),
    }  # fmt: skip
    subprocess.run(["bash", str(ROOT / "recipes" / "gpu_study.sh")], check=True, env=env, cwd=ROOT,
                   capture_output=True, timeout=600)  # fmt: skip
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert {"gpu_study.log", "study_table.md", "results.tgz"} <= names
    assert any(n.startswith("pipeline.tar.part-") for n in names)
    assert len(names) <= 8  # what the device tool brings back
    table = (out / "study_table.md").read_text()
    assert table.count("| aligned_no_controlnet |") == 2  # the study row and the long run's
