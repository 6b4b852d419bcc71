"""``textgen prep`` end to end: real photos and corrupt files in, readable shards whose layouts are the OCR out;
stats that add up; a job killed with SIGKILL and run again loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from data_prep.filters import FilterOptions, filter_boxes
from data_prep.runners import PrepConfig, run_prep
from textgen.cli import main
from textgen.core.ocr import ocr_to_layout
from textgen.core.shards import iter_triples

REPO = Path(__file__).resolve().parents[2]


def _stats(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*_stats.json"))]


def test_prep_on_real_photos_and_corrupt_files(tmp_path, kit, rapid_engine, capsys):
    src = tmp_path / "in"
    expected = kit.write_awkward_inputs(src)
    photos = kit.copy_icdar_images(src)  # skips when ../shared/benchmarks is absent
    out = tmp_path / "out"

    assert main(["prep", str(src), "-o", str(out), "--shard-size", "4", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "triples written" in printed and "rejected" in printed

    # stats add up, shard by shard and in total
    stats = _stats(out)
    assert [s["shard"] for s in stats] == ["00000", "00001", "00002", "00003"]
    for s in stats:
        assert s["inputs"] == s["written"] + s["rejected_total"] == s["written"] + sum(s["rejected"].values())
        assert s["engine"] == "rapidocr" and s["stage_seconds"]["ocr"] > 0
    summary = json.loads((out / "summary.json").read_text())
    n_inputs = len(expected) + len(photos)
    assert summary["inputs"] == n_inputs == summary["written"] + summary["rejected_total"]

    # every rejected input is named with its reason; everything else was written
    rejected = {Path(r["input"]).name: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    assert len(rejected) == summary["rejected_total"]
    triples = {t.record.source["path"]: t for t in iter_triples(out)}
    assert len(triples) == summary["written"] and set(triples) | set(rejected) == set(expected) | set(photos)
    for name, (action, what) in expected.items():
        if action == "reject":
            assert rejected[name]["reason"] == what, name
            assert rejected[name]["detail"], name
        else:
            record = triples[name].record
            assert record.layout.texts == [kit.AWKWARD_TEXT[name]], name  # legible after CMYK/16-bit/EXIF/alpha
            assert record.source.get("transforms", []) == ([what] if what else []), name
    assert rejected["icdar2015_test_img_125.jpg"]["reason"] == "no_text"  # a motion-blurred photo
    assert triples["d_exif.jpg"].image.size == (400, 300)

    # the layouts are the OCR: an independent read of each stored image gives the same layout
    for name, triple in triples.items():
        record = triple.record
        assert (record.width, record.height) == triple.image.size
        boxes = filter_boxes(rapid_engine.read(triple.image), record.width, record.height, FilterOptions()).boxes
        assert record.layout == ocr_to_layout(boxes, record.width, record.height, caption=record.caption), name
        assert record.layout == ocr_to_layout(record.ocr, record.width, record.height, caption=record.caption)
        assert record.training_caption.startswith("an image that reads ")
        assert all(f'"{text}"' in record.training_caption for text in record.layout.texts)

    # original bytes are kept where nothing had to change
    for name in ["a_clean.png", *[p for p in photos if p in triples]]:
        record = triples[name].record
        ext = name.rsplit(".", 1)[1]
        with tarfile.open(out / f"{record.source['shard']}.tar") as tar:
            stored = tar.extractfile(f"{record.key}.{ext}").read()
        assert stored == (src / name).read_bytes(), name


def test_rerun_after_kill_9_loses_and_duplicates_nothing(tmp_path, synthetic_job, kit):
    src, reference_out, reference = synthetic_job
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "textgen.cli", "prep", str(src), "-o", str(out), "--shard-size", "2", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        # kill in the middle of the second shard: the first is published, the second half-written
        while not ((out / "00000_stats.json").exists() and (out / ".00001.tar.partial").exists()):
            if proc.poll() is not None:
                pytest.fail(f"prep ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "prep took too long to finish its first shard"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    assert not (out / "00001_stats.json").exists()  # the killed shard does not look complete
    assert (out / ".00001.tar.partial").exists()
    first_shard = {p: (out / p).read_bytes() for p in ("00000.tar", "00000_stats.json", "00000_rejected.jsonl")}

    assert main(["prep", str(src), "-o", str(out), "--shard-size", "2", "--no-progress"]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["shards_skipped"] == 1 and summary["shards_written"] == 3
    assert {p: (out / p).read_bytes() for p in first_shard} == first_shard  # the finished shard was not redone
    assert not list(out.glob(".*.partial"))
    assert summary["inputs"] == reference["inputs"] == 8
    assert summary["inputs"] == summary["written"] + summary["rejected_total"]
    contents = kit.shard_contents(out)  # fails on any key seen twice
    assert sorted(contents) == [f"{s:05d}_{i:06d}" for s in range(4) for i in range(2)]
    assert contents == kit.shard_contents(reference_out)


def test_rerun_redoes_partial_shards_and_refuses_changed_settings_or_input(tmp_path, synthetic_job, capsys):
    src, reference_out, _ = synthetic_job
    inp, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(src, inp)
    shutil.copytree(reference_out, out)
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("0000[023]*")}
    # shard 1 as a crash leaves it: tar renamed into place, stats never written; plus a stray temporary file
    (out / "00001_stats.json").unlink()
    (out / "00001.tar").write_bytes(b"half a tar")
    (out / ".00002.tar.partial").write_bytes(b"junk")

    args = ["prep", str(inp), "-o", str(out), "--shard-size", "2", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["shards_written"], summary["shards_skipped"]) == (1, 3)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("0000[023]*")} == done_before
    assert (out / "00001.tar").read_bytes() == (reference_out / "00001.tar").read_bytes()  # same bytes as before
    assert not (out / ".00002.tar.partial").exists()

    capsys.readouterr()
    assert main([*args, "--min-confidence", "0.9"]) == 2
    assert "different settings (filters changed)" in capsys.readouterr().err
    (inp / "syn_00_extra.png").write_bytes((inp / "syn_00.png").read_bytes())  # shifts the sorted file list
    assert main(args) == 2
    assert "written from other input" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["inputs"] == 9


def test_prep_reads_img2dataset_shards_and_keeps_their_captions(tmp_path, kit):
    import webdataset as wds

    from data_prep.synth import generate_synthetic

    shards = tmp_path / "laion"
    shards.mkdir()
    with wds.TarWriter(str(shards / "00000.tar")) as tar:
        for i, (image, record) in enumerate(generate_synthetic(2, size=256, seed=5)):
            key = f"{i:09d}"
            meta = {"url": f"https://example.com/{i}.jpg", "key": key, "caption": record.caption, "status": "success"}
            tar.write(
                {"__key__": key, "jpg": kit.encode(image, "JPEG", quality=95), "json": json.dumps(meta).encode()}
            )
            expected_texts = record.layout.texts
    config = PrepConfig(input=str(shards), output=str(tmp_path / "out"), progress=False)
    summary = run_prep(config)
    assert summary["written"] == 2 and summary["shards"] == 1
    triples = list(iter_triples(tmp_path / "out"))
    last = triples[-1].record
    assert last.source["url"] == "https://example.com/1.jpg" and last.source["key"] == "000000001"
    assert last.source["caption_source"] == "source" and last.caption == last.source["meta"]["caption"]
    assert " ".join(last.layout.texts).split() == " ".join(expected_texts).split()
    assert last.training_caption == last.caption + " that reads " + " ".join(f'"{t}"' for t in last.layout.texts)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["prep", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("textgen prep: error:") and "no such input" in err and "\n" not in err
    assert main(["prep", str(tmp_path), "-o", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "workers must be >= 1" in capsys.readouterr().err
