"""kill -9 in the middle of the batch jobs: nothing lost, nothing duplicated, no orphan left writing, a clean rerun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find child processes")


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid) and fields.get("State", "").strip()[:1] != "Z":
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def _textgen(*args: str) -> list[str]:
    return [sys.executable, "-m", "textgen.cli", *args]


def test_prep_killed_mid_run_leaves_no_orphan_and_reruns_clean(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(24):
        image = Image.new("RGB", (160, 96), "white")
        ImageDraw.Draw(image).text((10, 30), f"SALE {i}", fill="black")
        image.save(images / f"{i:03d}.png")
    out = tmp_path / "out"
    argv = _textgen("prep", str(images), "-o", str(out), "--workers", "2", "--shard-size", "3",
                    "--engine", "rapidocr", "--keep-no-text", "--min-side", "8", "--no-progress")  # fmt: skip
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:  # wait until the pool is up and working
        workers = [p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        time.sleep(0.2)
    assert len(workers) >= 2, "the worker pool never started"
    while time.time() < deadline and not list(out.glob("*_stats.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while any(_alive(w) for w in workers) and time.time() - t0 < 10:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "pool workers outlived their killed parent"

    subprocess.run(argv, env=ENV, check=True, capture_output=True, cwd=ROOT)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 24 == summary["written"] + summary["rejected_total"]
    assert not list(out.glob("*.partial")) and not list(out.glob(".*.partial"))
    import tarfile

    keys = []
    for tar in sorted(out.glob("*.tar")):
        with tarfile.open(tar) as t:
            keys += [m.name.split(".")[0] for m in t if m.name.endswith(".json")]
    assert len(keys) == len(set(keys)) == summary["written"]  # nothing written twice


def test_a_second_prep_on_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(30):
        Image.new("RGB", (64, 64), "white").save(images / f"{i:03d}.png")
    out = tmp_path / "out"
    argv = _textgen("prep", str(images), "-o", str(out), "--shard-size", "2", "--engine", "rapidocr",
                    "--keep-no-text", "--min-side", "8", "--no-progress")  # fmt: skip
    first = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / ".prep.lock").is_file():
        time.sleep(0.1)
    time.sleep(0.5)
    second = subprocess.run(argv, env=ENV, capture_output=True, text=True, cwd=ROOT)
    first.wait()
    if first.returncode == 0 and "another prep" not in second.stderr:
        pytest.skip("the first prep finished before the second started (machine too fast to race)")
    assert second.returncode != 0
    assert "another prep (pid" in second.stderr and "Traceback" not in second.stderr


def test_synth_killed_mid_run_reruns_to_the_same_bytes(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    argv = _textgen("synth", "-o", str(killed), "--n", "400", "--size", "64", "--shard-size", "20", "--workers", "2")
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(killed.glob("*_stats.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(argv, env=ENV, check=True, capture_output=True, cwd=ROOT)
    subprocess.run(_textgen("synth", "-o", str(clean), "--n", "400", "--size", "64", "--shard-size", "20"),
                   env=ENV, check=True, capture_output=True, cwd=ROOT)  # fmt: skip
    names = sorted(p.name for p in clean.glob("*.tar"))
    assert names == sorted(p.name for p in killed.glob("*.tar")) and len(names) == 20
    for name in names:
        assert (killed / name).read_bytes() == (clean / name).read_bytes(), name
    assert not list(killed.glob(".*.partial"))
