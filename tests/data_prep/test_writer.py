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


def test_stats_file_lists_every_count_in_a_fixed_order_and_sums_several_rows(tmp_path, kit):
    writer = ShardWriter(tmp_path, "00003", {"engine": "rapidocr", "input": "in/", "fingerprint": "f1"})
    first = _row(kit, "00003_000000")
    first["caption_source"] = "captioner"
    second = _row(kit, "00003_000001", text="SALE")
    second["caption_source"] = "captioner"
    second["source"] = {"path": "b.png"}  # rows may carry the source as a dict already
    bare = _row(kit, "00003_000002", text="NOW")
    for key in ("seconds", "dropped", "transforms", "detail"):
        bare.pop(key)  # optional fields: absent means none
    reject = _row(kit, "00003_000003", reject="no_text")
    reject.pop("detail")
    for row in (first, second, bare, reject):
        writer.add(row)
    stats = writer.close()
    assert list(stats) == [
        "shard", "input", "fingerprint", "inputs", "written", "rejected_total", "rejected", "dropped_boxes", "boxes",
        "captioned", "transforms", "seconds", "stage_seconds", "engine", "finished",
    ]  # fmt: skip
    assert (stats["shard"], stats["input"], stats["fingerprint"]) == ("00003", "in/", "f1")
    assert stats["captioned"] == 2 and stats["boxes"] == 3 and stats["written"] == 3
    assert stats["dropped_boxes"] == {"box_garbage": 4} and stats["transforms"] == {"exif_transpose": 2}
    assert stats["stage_seconds"]["ocr"] == 1.5 and stats["stage_seconds"]["decode"] == 0.03  # 3 rows timed, 1 not
    assert stats["stage_seconds"]["write"] > 0 and 0 <= stats["seconds"] < 600
    assert all(v == round(v, 3) for v in stats["stage_seconds"].values())
    text = (tmp_path / "00003_stats.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "shard": "00003",\n') and text.endswith("}\n")  # indented, one key a line
    assert [t.key for t in iter_shard(tmp_path / "00003.tar")] == ["00003_000000", "00003_000001", "00003_000002"]
    rejected = json.loads((tmp_path / "00003_rejected.jsonl").read_text())
    assert rejected["detail"] == "" and rejected["reason"] == "no_text"
    writer.abort()  # after close: nothing to drop, the published shard stays
    assert shard_done(tmp_path, "00003") and (tmp_path / "00003.tar").is_file()


def test_write_time_accumulates_over_rows(tmp_path, kit, monkeypatch):
    import data_prep.writer as writer_module

    clock = iter(range(100))
    monkeypatch.setattr(writer_module.time, "perf_counter", lambda: float(next(clock)))
    writer = ShardWriter(tmp_path, "00004")
    for i in range(3):
        writer.add(_row(kit, f"00004_{i:06d}"))
    assert writer.stage_seconds["write"] == 3.0  # 1 s per row on the fake clock, summed
    writer.abort()


def test_summarize_adds_every_field_and_tolerates_old_stats_files(tmp_path):
    (tmp_path / "00000_stats.json").write_text(json.dumps({
        "inputs": 3, "written": 2, "rejected_total": 1, "boxes": 5, "rejected": {"no_text": 1},
        "dropped_boxes": {"box_garbage": 2}, "stage_seconds": {"ocr": 1.23456, "decode": 0.5},
    }), encoding="utf-8")  # fmt: skip
    (tmp_path / "00001_stats.json").write_text(
        json.dumps(
            {
                "inputs": 4,
                "written": 4,
                "rejected_total": 0,
                "dropped_boxes": {"box_garbage": 1, "box_small": 3},
                "stage_seconds": {"ocr": 2.0001},
            }
        ),
        encoding="utf-8",
    )  # fmt: skip  (an older file: no "boxes", no "rejected")
    (tmp_path / "notes_stats.json").write_text("{}")  # not a shard's stats file
    totals = summarize(tmp_path)
    assert totals == {
        "shards": 2, "inputs": 7, "written": 6, "rejected_total": 1, "boxes": 5, "rejected": {"no_text": 1},
        "dropped_boxes": {"box_garbage": 3, "box_small": 3}, "stage_seconds": {"decode": 0.5, "ocr": 3.235},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "root", "name"),
    [
        ({"tar": "in/a.tar", "key": "k1"}, None, "in/a.tar:k1"),
        ({"tar": "in/a.tar"}, None, "in/a.tar"),
        ({"list": "urls.jsonl", "line": 7, "path": "x.jpg"}, None, "urls.jsonl:7 (x.jpg)"),
        ({"list": "urls.jsonl", "line": 7}, None, "urls.jsonl:7"),
        ({"list": "urls.jsonl"}, None, "urls.jsonl"),
        ({"path": "sub/a.png"}, "photos", "photos/sub/a.png"),
        ({"path": "/abs/a.png"}, "photos", "/abs/a.png"),
        ({"path": "a.png"}, None, "a.png"),
        ({}, None, "?"),
    ],
)
def test_input_name_says_where_an_input_came_from(source, root, name):
    from data_prep.writer import input_name

    assert input_name(source, root) == name
