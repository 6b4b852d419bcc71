"""Runners: a process pool gives the same shards as one process; failures stay per shard; the OCR stage."""

from __future__ import annotations

import json

import pytest

from data_prep import runners, runners_ray
from data_prep.readers import plan_shards
from data_prep.runners import OCRPrepStage, PrepConfig, run_prep


def test_two_local_workers_write_what_one_process_writes(tmp_path, synthetic_job, kit):
    src, reference_out, reference = synthetic_job
    out = tmp_path / "out"
    summary = run_prep(PrepConfig(input=str(src), output=str(out), shard_size=2, workers=2, progress=False))
    assert summary["shards_written"] == 4 and summary["shards_failed"] == []
    assert summary["inputs"] == 8 == summary["written"] + summary["rejected_total"]
    assert (summary["written"], summary["rejected"]) == (reference["written"], reference["rejected"])
    assert kit.shard_contents(out) == kit.shard_contents(reference_out)
    for shard in range(4):  # same records, same bytes (fixed tar member times)
        name = f"{shard:05d}.tar"
        assert (out / name).read_bytes() == (reference_out / name).read_bytes()


def test_a_failing_shard_does_not_stop_the_others(tmp_path, monkeypatch, kit):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(kit.encode(kit.glyph_image("OPEN"), "PNG"))

    class Pipeline:  # stands in for PrepPipeline: fails on the second shard like a crashing model would
        def __init__(self, config, keep_pixels=True):
            self.config = config

        def __call__(self, batch):
            if batch["shard"][0] == "00001":
                raise MemoryError("out of memory in the OCR model")
            out = {k: list(v) for k, v in batch.items()}
            out["reject"] = ["no_text"] * len(out["key"])
            return out

    monkeypatch.setattr(runners, "PrepPipeline", Pipeline)
    config = PrepConfig(input=str(src), output=str(tmp_path / "out"), shard_size=1, progress=False)
    summary = run_prep(config)
    assert summary["shards_failed"] == [{"shard": "00001", "error": "MemoryError: out of memory in the OCR model"}]
    assert summary["shards_written"] == 2 and summary["inputs"] == 2
    out = tmp_path / "out"
    assert not (out / "00001_stats.json").exists() and not list(out.glob(".*partial"))

    monkeypatch.setattr(Pipeline, "__call__", lambda self, batch: (_ for _ in ()).throw(RuntimeError("no engine")))
    (out / "00000_stats.json").unlink()
    with pytest.raises(RuntimeError, match="all 2 pending shard"):
        run_prep(config)


def test_ocr_stage_rejects_an_image_the_engine_fails_on(kit):
    stage = OCRPrepStage.__new__(OCRPrepStage)  # the engine is injected: no model to load
    stage.engine, stage.name = kit.FakeEngine(fail_below=100), "fake"
    images = [kit.encode(kit.glyph_image("A", size), "PNG") for size in ((300, 300), (60, 60), (300, 300))]
    batch = {
        "key": ["a", "b", "c"],
        "reject": ["", "", "truncated"],
        "detail": ["", "", "cut"],
        "image": images,
        "ocr": ["[]"] * 3,
        "seconds": ["{}"] * 3,
    }
    out = stage(batch)
    assert [b["text"] for b in json.loads(out["ocr"][0])] == ["HELLO"]
    assert out["reject"] == ["", "ocr_error", "truncated"]
    assert "engine exploded" in out["detail"][1] and out["image"][1] == b""
    assert stage.engine.calls == 2  # the already rejected row is not read
    assert json.loads(out["seconds"][0])["ocr"] >= 0


def test_config_validation_and_ray_cpu_shares(tmp_path):
    good = PrepConfig(input=str(tmp_path), output=str(tmp_path / "out"))
    assert good.validate() is good and good.engine_name == "rapidocr"
    assert good.to_dict()["ocr_options"] == {"threads": 1}
    for change, message in (
        ({"runner": "spark"}, "runner"),
        ({"batch_size": 0}, "batch_size"),
        ({"languages": ()}, "languages"),
        ({"output": str(tmp_path)}, "must not be the input"),
    ):
        with pytest.raises(ValueError, match=message):
            PrepConfig(**{"input": str(tmp_path), "output": str(tmp_path / "out"), **change}).validate()
    two = PrepConfig(input="x", output="y", workers=2)
    assert runners_ray._ray_cpus_per_worker(two, 2.0) == 0.5  # leaves one of two CPUs for read/decode/filter tasks
    assert runners_ray._ray_cpus_per_worker(two, 64.0) == 1.0
    assert runners_ray._ray_cpus_per_worker(PrepConfig(input="x", output="y", workers=8), 2.0) == pytest.approx(0.125)


def test_plan_expected_counts_drive_the_progress_total(tmp_path, kit):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.png").write_bytes(kit.encode(kit.glyph_image("A", (64, 64)), "PNG"))
    tasks = plan_shards(src, shard_size=2)
    progress = runners._Progress(PrepConfig(input=str(src), output="o", progress=False), tasks)
    assert progress.bar.total == 5 and progress.shards == 3
    progress.close()
