"""The prep job on Ray Data (a local 2-CPU Ray): the same shards, stats and rejected list as the local runner."""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

from data_prep.runners import PrepConfig, run_prep

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    # a short temp dir: Ray's unix socket paths must stay under ~107 characters
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_runner_writes_what_the_local_runner_writes(tmp_path, synthetic_job, local_ray, kit):
    src, reference_out, reference = synthetic_job
    out = tmp_path / "out"
    config = PrepConfig(input=str(src), output=str(out), shard_size=2, runner="ray", workers=2, progress=False)
    summary = run_prep(config)
    assert summary["shards_written"] == 4 and summary["runner"] == "ray"
    assert summary["inputs"] == 8 == summary["written"] + summary["rejected_total"]
    assert (summary["written"], summary["rejected"]) == (reference["written"], reference["rejected"])
    assert kit.shard_contents(out) == kit.shard_contents(reference_out)
    for shard in range(4):
        name = f"{shard:05d}"
        assert (out / f"{name}.tar").read_bytes() == (reference_out / f"{name}.tar").read_bytes()
        stats = json.loads((out / f"{name}_stats.json").read_text())
        assert stats["runner"] == "ray" and stats["inputs"] == stats["written"] + stats["rejected_total"]
        assert stats["stage_seconds"].get("ocr", 0) > 0 or stats["written"] == 0
    assert ray.is_initialized()  # the runner used the caller's Ray and left it running

    again = run_prep(config)  # resumable on Ray too: nothing left to do
    assert (again["shards_written"], again["shards_skipped"]) == (0, 4)
