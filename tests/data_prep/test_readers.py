"""Readers (folder, webdataset/img2dataset tars, JSONL/parquet lists) and the decode stage on awkward images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep.decode import DecodeError, DecodeOptions, DecodeStage, decode_image
from data_prep.readers import ShardTask, detect_format, plan_shards, read_shard


def _samples(tasks):
    return [s for t in tasks for s in read_shard(t)]


# ------------------------------------------------------------------------------------------------- folder
def test_folder_reader_is_recursive_sorted_sharded_with_stable_keys_and_sidecar_captions(tmp_path, kit):
    root = tmp_path / "in"
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    png = kit.encode(kit.glyph_image("A", (64, 64)), "PNG")
    for rel in ("z.png", "a.jpg", "b/c.webp", "b/deep/d.PNG", ".hidden/x.png", ".dot.png"):
        (root / rel).write_bytes(png)
    (root / "notes.txt").write_text("not an image sidecar of anything")
    (root / "a.txt").write_text("  a red sign  \n")
    (root / "b" / "c.json").write_text(json.dumps({"caption": "a blue door", "url": "http://x/c.webp"}))
    (root / "z.json").write_text("{broken")

    tasks = plan_shards(root, shard_size=3)
    assert [t.shard for t in tasks] == ["00000", "00001"]
    assert [t.expected for t in tasks] == [3, 1]
    samples = _samples(tasks)
    assert [s.source["path"] for s in samples] == ["a.jpg", "b/c.webp", "b/deep/d.PNG", "z.png"]
    assert [s.key for s in samples] == ["00000_000000", "00000_000001", "00000_000002", "00001_000000"]
    assert all(s.data == png and s.reject is None for s in samples)
    assert samples[0].caption == "a red sign"
    assert samples[1].caption == "a blue door" and samples[1].source["meta"]["url"] == "http://x/c.webp"
    assert samples[2].caption is None
    assert samples[3].caption is None and "z.json" in samples[3].source["sidecar_error"]

    again = plan_shards(root, shard_size=3)
    assert again == tasks and [t.fingerprint() for t in again] == [t.fingerprint() for t in tasks]
    assert ShardTask.from_json(tasks[0].to_json()) == tasks[0]


def test_folder_reader_reports_a_file_deleted_after_planning(tmp_path, kit):
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.png").write_bytes(kit.encode(kit.glyph_image("A", (64, 64)), "PNG"))
    (root / "b.png").write_bytes(b"x")
    tasks = plan_shards(root, shard_size=10)
    (root / "b.png").unlink()
    samples = _samples(tasks)
    assert [s.reject for s in samples] == [None, "missing_file"]
    assert "b.png" in samples[1].detail


def test_plan_errors_name_the_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such input"):
        plan_shards(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        plan_shards(tmp_path / "empty")
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards(tmp_path, shard_size=0)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"x\.csv: expected a folder"):
        detect_format(tmp_path / "x.csv")


# -------------------------------------------------------------------------------------------- webdataset
def _img2dataset_tar(kit, path: Path, n: int, missing_image: int | None = None) -> list[bytes]:
    import webdataset as wds

    images = []
    with wds.TarWriter(str(path)) as tar:
        for i in range(n):
            key = f"{i:09d}"
            sample = {
                "__key__": key,
                "txt": f"caption {i}".encode(),
                "json": json.dumps({"url": f"http://example.com/{i}.jpg", "key": key, "status": "success"}).encode(),
            }
            if i != missing_image:
                data = kit.encode(kit.glyph_image(str(i), (64, 64)), "JPEG")
                sample["jpg"] = data
                images.append(data)
            tar.write(sample)
    return images


def test_webdataset_reader_reads_img2dataset_shards(tmp_path, kit):
    shards = tmp_path / "shards"
    shards.mkdir()
    first = _img2dataset_tar(kit, shards / "00000.tar", 3)
    _img2dataset_tar(kit, shards / "00001.tar", 2, missing_image=1)
    (shards / "00000_stats.json").write_text("{}")  # img2dataset writes these beside the tars: not inputs

    assert detect_format(shards) == "webdataset"
    tasks = plan_shards(shards, shard_size=1)  # a tar stays one shard whatever the shard size
    assert [(t.shard, Path(t.path).name, t.expected) for t in tasks] == [
        ("00000", "00000.tar", None),
        ("00001", "00001.tar", None),
    ]
    samples = _samples(tasks)
    assert [s.key for s in samples] == ["00000_000000", "00000_000001", "00000_000002", "00001_000000", "00001_000001"]
    assert [s.data for s in samples[:3]] == first
    assert [s.caption for s in samples] == [f"caption {i}" for i in (0, 1, 2, 0, 1)]
    assert samples[0].source["url"] == "http://example.com/0.jpg" and samples[0].source["key"] == "000000000"
    assert samples[4].reject == "no_image" and samples[4].data == b""
    assert plan_shards(str(shards / "*.tar")) == tasks


def test_webdataset_reader_survives_a_truncated_tar(tmp_path, kit):
    good = tmp_path / "good.tar"
    _img2dataset_tar(kit, good, 4)
    data = good.read_bytes()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[: len(data) * 2 // 3])
    samples = _samples(plan_shards(bad))
    assert samples[-1].reject == "unreadable_tar" and "bad.tar" in samples[-1].detail
    assert all(s.reject is None for s in samples[:-1]) and 1 <= len(samples) - 1 < 4
    assert len({s.key for s in samples}) == len(samples)


# ---------------------------------------------------------------------------------------------- lists
def test_jsonl_list_reader_resolves_relative_paths_and_rejects_bad_rows(tmp_path, kit):
    (tmp_path / "img").mkdir()
    png = kit.encode(kit.glyph_image("A", (64, 64)), "PNG")
    (tmp_path / "img" / "a.png").write_bytes(png)
    rows = [
        json.dumps({"image": "img/a.png", "alt": "alt text", "id": 7}),
        "{not json",
        json.dumps({"image": "https://example.com/b.jpg"}),
        json.dumps({"image": "img/missing.png"}),
        json.dumps({"other": 1}),
    ]
    lst = tmp_path / "list.jsonl"
    lst.write_text("\n".join(rows) + "\n\n")
    samples = _samples(plan_shards(lst, shard_size=2))
    assert [s.reject for s in samples] == [None, "bad_list_row", "url_not_supported", "missing_file", "bad_list_row"]
    assert samples[0].data == png and samples[0].caption == "alt text" and samples[0].source["meta"] == {"id": 7}
    assert "line 2" in samples[1].detail
    assert [s.key for s in samples][:3] == ["00000_000000", "00000_000001", "00001_000000"]


def test_parquet_list_reader_with_named_columns(tmp_path, kit):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    png = kit.encode(kit.glyph_image("A", (64, 64)), "PNG")
    (tmp_path / "a.png").write_bytes(png)
    table = pa.table({"file_name": ["a.png", str(tmp_path / "a.png")], "blip": ["one", "two"]})
    pq.write_table(table, tmp_path / "list.parquet")
    with pytest.raises(ValueError, match="no path column"):
        plan_shards(tmp_path / "list.parquet")
    tasks = plan_shards(tmp_path / "list.parquet", path_column="file_name", caption_column="blip")
    samples = _samples(tasks)
    assert [(s.data == png, s.caption) for s in samples] == [(True, "one"), (True, "two")]


# ---------------------------------------------------------------------------------------------- decoding
def test_decode_handles_or_rejects_every_awkward_input(awkward_folder):
    folder, expected = awkward_folder
    for name, (action, what) in sorted(expected.items()):
        data = (folder / name).read_bytes()
        if name == "l_blank.png":  # rejected later, by the text filter; the image itself is fine
            action, what = "write", None
        if action == "reject":
            with pytest.raises(DecodeError) as info:
                decode_image(data)
            assert info.value.reason == what, name
            continue
        decoded = decode_image(data)
        assert decoded.image.mode in ("RGB", "L"), name
        assert decoded.transforms == ([what] if what else []), name
        if what is None:
            assert decoded.data == data and decoded.ext == "png", name  # no transform: original bytes kept
        stored = Image.open(io.BytesIO(decoded.data))
        assert stored.size == decoded.image.size and stored.mode in ("RGB", "L"), name


def test_decode_transforms_give_the_right_pixels(awkward_folder, kit):
    folder, _ = awkward_folder
    exif = decode_image((folder / "d_exif.jpg").read_bytes())
    assert exif.image.size == (400, 300) and exif.ext == "jpg"  # stored 300x400, shown upright
    assert Image.open(io.BytesIO(exif.data)).getexif().get(0x0112, 1) == 1  # not rotated twice by viewers

    original = np.asarray(kit.glyph_image("CAFE").convert("L"), dtype=np.int16)
    sixteen = np.asarray(decode_image((folder / "c_16bit.png").read_bytes()).image, dtype=np.int16)
    assert np.abs(sixteen - original).max() <= 1  # 16-bit scaled back to the same 8-bit values

    alpha = np.asarray(decode_image((folder / "e_alpha.png").read_bytes()).image)
    assert alpha[0, 0].tolist() == [255, 255, 255]  # transparent background composited on white

    cmyk = decode_image((folder / "b_cmyk.jpg").read_bytes())
    assert cmyk.ext == "jpg" and cmyk.image.mode == "RGB"
    assert np.asarray(cmyk.image.convert("L"), dtype=np.float64).mean() > 150  # white paper stays light


def test_decode_limits(tmp_path, kit):
    photo = kit.encode(kit.glyph_image("BIG", (1200, 800)), "JPEG", quality=90)
    with pytest.raises(DecodeError) as info:
        decode_image(photo, DecodeOptions(max_pixels=900_000))
    assert info.value.reason == "too_many_pixels" and "1200x800" in str(info.value)
    small = decode_image(photo, DecodeOptions(max_side=600))
    assert small.image.size == (600, 400) and small.transforms == ["resize"] and small.ext == "jpg"
    assert decode_image(photo).data == photo
    with pytest.raises(DecodeError) as info:
        decode_image(kit.png_bomb(20_000, 20_000))  # under Pillow's own limit: our header check catches it
    assert info.value.reason == "too_many_pixels"
    gif = decode_image(kit.encode(kit.glyph_image("G", (300, 300)).convert("P"), "GIF"))
    assert gif.ext == "png" and "reencode_gif" in gif.transforms
    with pytest.raises(ValueError, match="min_side"):
        DecodeOptions(min_side=0).validate()


def test_decode_stage_marks_rows_and_passes_rejected_rows_through(awkward_folder, kit):
    folder, _ = awkward_folder
    samples = _samples(plan_shards(folder, shard_size=100))
    samples[0].reject, samples[0].detail = "missing_file", "gone"
    rows = [s.to_row() for s in samples]
    batch = {k: [r[k] for r in rows] for k in rows[0]}
    out = DecodeStage(keep_pixels=True)(batch)
    names = [json.loads(s)["path"] for s in out["source"]]
    for i, name in enumerate(names):
        action, reason = kit.AWKWARD_EXPECTED[name]
        if i == 0:
            assert out["reject"][i] == "missing_file" and out["pixels"][i] is None
        elif action == "reject" and reason != "no_text":
            assert out["reject"][i] == reason and out["image"][i] == b"" and out["detail"][i]
        else:
            assert out["reject"][i] == "" and out["image"][i] and out["width"][i] >= 256
            assert out["pixels"][i].size == (out["width"][i], out["height"][i])
        assert out["data"][i] == b""  # raw bytes are not carried past decoding
