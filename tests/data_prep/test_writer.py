"""Shard writer: readable triples, stats that add up, rejected list, and nothing published before close."""

from __future__ import annotations

import json

import pytest

from data_prep.writer import ShardWriter, merge_rejected, remove_partials, shard_done, summarize
from textgen.core.ocr import ocr_to_layout
from textgen.core.shards import OCRBox, iter_shard


def _row(kit, key: str, reject: str = "", text: str = "OPEN", ext: str = "png") -> dict:
    image = kit.encode(kit.glyph_image(text, (320, 240)), "PNG" if ext == "png" else "JPEG")
    box = OCRBox.from_polygon(text, [(40, 80), (280, 80), (280, 160), (40, 160)], 0.97, "en")
    return {
        "key": key,
        "shard": key.split("_")[0],
        "index": int(key.split("_")[1]),
        "data": b"",
        "caption": "a sign",
        "source": json.dumps({"path": f"{key}.{ext}"}),
        "reject": reject,
        "detail": "bad bytes" if reject else "",
        "image": b"" if reject else image,
        "image_ext": "" if reject else ext,
        "width": 0 if reject else 320,
        "height": 0 if reject else 240,
        "transforms": "" if reject else "exif_transpose",
        "ocr": "[]" if reject else json.dumps([box.to_dict()]),
        "dropped": json.dumps({"box_garbage": 2} if not reject else {}),
        "caption_source": "source",
        "training_caption": "" if reject else f'a sign that reads "{text}"',
        "seconds": json.dumps({"decode": 0.01, "ocr": 0.5}),
    }


def test_writer_publishes_readable_triples_stats_and_rejected(tmp_path, kit):
    writer = ShardWriter(tmp_path, "00007", {"engine": "rapidocr", "input": "in/", "fingerprint": "abc"}, root="in")
    rows = [
        _row(kit, "00007_000000"),
        _row(kit, "00007_000001", reject="truncated"),
        _row(kit, "00007_000002", text="SALE"),
    ]
    for row in rows:
        writer.add(row)
    assert not shard_done(tmp_path, "00007") and not (tmp_path / "00007.tar").exists()  # nothing before close
    stats = writer.close()

    assert shard_done(tmp_path, "00007")
    assert stats["inputs"] == 3 and stats["written"] == 2 and stats["rejected"] == {"truncated": 1}
    assert stats["inputs"] == stats["written"] + stats["rejected_total"]
    assert stats["dropped_boxes"] == {"box_garbage": 4} and stats["boxes"] == 2
    assert stats["transforms"] == {"exif_transpose": 2} and stats["engine"] == "rapidocr"
    assert stats["stage_seconds"]["ocr"] == pytest.approx(1.5)
    assert json.loads((tmp_path / "00007_stats.json").read_text()) == stats

    triples = list(iter_shard(tmp_path / "00007.tar"))
    assert [t.key for t in triples] == ["00007_000000", "00007_000002"]
    for triple, row in zip(triples, (rows[0], rows[2])):
        record = triple.record
        assert triple.image.size == (320, 240)
        assert record.layout == ocr_to_layout(record.ocr, 320, 240, caption="a sign")  # layout is the OCR
        assert record.training_caption == row["training_caption"]
        assert record.source == {
            "path": json.loads(row["source"])["path"],
            "shard": "00007",
            "transforms": ["exif_transpose"],
            "caption_source": "source",
            "ocr_engine": "rapidocr",
        }

    rejected = [json.loads(line) for line in (tmp_path / "00007_rejected.jsonl").read_text().splitlines()]
    assert rejected == [
        {
            "key": "00007_000001",
            "shard": "00007",
            "input": "in/00007_000001.png",
            "reason": "truncated",
            "detail": "bad bytes",
        }
    ]


def test_aborted_shard_leaves_nothing_that_looks_complete(tmp_path, kit):
    writer = ShardWriter(tmp_path, "00000")
    writer.add(_row(kit, "00000_000000"))
    assert (tmp_path / ".00000.tar.partial").exists()
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writer_leaves_only_a_partial_file_which_is_removed(tmp_path, kit):
    writer = ShardWriter(tmp_path, "00000")
    writer.add(_row(kit, "00000_000000"))
    # a process killed here never closes or renames anything (test_prep kills a real job with SIGKILL)
    assert not shard_done(tmp_path, "00000") and not (tmp_path / "00000.tar").exists()
    assert [p.name for p in remove_partials(tmp_path)] == [".00000.tar.partial"]
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_duplicate_keys_are_a_bug_not_data(tmp_path, kit):
    writer = ShardWriter(tmp_path, "00000")
    writer.add(_row(kit, "00000_000000"))
    with pytest.raises(RuntimeError, match="written twice"):
        writer.add(_row(kit, "00000_000000"))
    writer.abort()


def test_merge_rejected_and_summarize_cover_finished_shards_only(tmp_path, kit):
    for shard, rejects in (("00001", ["not_an_image"]), ("00000", ["empty_file", "no_text"])):
        writer = ShardWriter(tmp_path, shard)
        writer.add(_row(kit, f"{shard}_000000"))
        for i, reason in enumerate(rejects, start=1):
            writer.add(_row(kit, f"{shard}_{i:06d}", reject=reason))
        writer.close()
    unfinished = ShardWriter(tmp_path, "00002")
    unfinished.add(_row(kit, "00002_000000", reject="truncated"))  # never closed: not counted anywhere
    assert merge_rejected(tmp_path) == 3
    lines = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(x["key"], x["reason"]) for x in lines] == [
        ("00000_000001", "empty_file"),
        ("00000_000002", "no_text"),
        ("00001_000001", "not_an_image"),
    ]
    totals = summarize(tmp_path)
    assert (totals["shards"], totals["inputs"], totals["written"], totals["rejected_total"]) == (2, 5, 2, 3)
    assert totals["rejected"] == {"empty_file": 1, "no_text": 1, "not_an_image": 1}
    unfinished.abort()


def test_shards_read_back_with_webdataset(tmp_path, kit):
    wds = pytest.importorskip("webdataset")
    writer = ShardWriter(tmp_path, "00000")
    for i in range(2):
        writer.add(_row(kit, f"00000_{i:06d}", ext="jpg"))
    writer.close()
    samples = list(wds.WebDataset(str(tmp_path / "00000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["00000_000000", "00000_000001"]
    assert all(set(s) >= {"jpg", "json"} for s in samples)
    assert json.loads(samples[0]["json"])["layout"]["boxes"][0]["text"] == "OPEN"
