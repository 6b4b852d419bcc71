"""textgen.train_data: stored-ink glyphs, box labels, the in-memory set and its cache (CPU, offline)."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from data_prep.synth import write_synthetic
from textgen.core.shards import shard_paths
from textgen.models import build_char_tokenizer
from textgen.recognizer import CHARSET
from textgen.train_data import GlyphTripleStream, MemoryTriples, _iter_raw


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    write_synthetic(root / "simple", n=12, size=64, seed=5, shard_size=4)
    return root / "simple"


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer(128)


def _decode_all(shards, tokenizer, glyph_source):
    stream = GlyphTripleStream(shard_paths(shards), resolution=64, tokenizer=tokenizer, glyph_source=glyph_source)
    out = []
    for path in shard_paths(shards):
        for key, files in _iter_raw(path):
            out.append((key, files, stream.decode(path.name, key, files, dropped=False)))
    return out


def test_mask_glyph_is_the_stored_ink_and_sits_on_the_painted_text(shards, tokenizer):
    for _, files, sample in _decode_all(shards, tokenizer, "mask"):
        mask = np.asarray(Image.open(io.BytesIO(files["mask.png"])).convert("L"))
        glyph = sample["conditioning"].numpy()
        assert np.array_equal(glyph, 255 - mask)  # black text on white, exactly the drawn ink
        # the painted text differs from its neighbourhood exactly where the ink is: the ink's bounding box
        # equals the layout box union, to the pixel
        ys, xs = np.nonzero(mask > 0)
        boxes = sample["boxes"][sample["boxes"].abs().sum(dim=1) > 0]
        assert xs.min() >= boxes[:, 0].min().item() - 1 and xs.max() <= boxes[:, 2].max().item() + 1
        assert ys.min() >= boxes[:, 1].min().item() - 1 and ys.max() <= boxes[:, 3].max().item() + 1


def test_rendered_glyph_differs_from_the_ink(shards, tokenizer):
    rendered = _decode_all(shards, tokenizer, "render")
    stored = _decode_all(shards, tokenizer, "mask")
    differing = sum(
        not np.array_equal(a[2]["conditioning"].numpy(), b[2]["conditioning"].numpy())
        for a, b in zip(rendered, stored)
    )
    assert differing == len(rendered)  # the renderer's own fit never lands exactly on the drawn text


def test_box_labels_spell_the_layout_texts(shards, tokenizer):
    for _, files, sample in _decode_all(shards, tokenizer, "render"):
        record = json.loads(files["json"])
        texts = [b["text"] for b in record["layout"]["boxes"]]
        angle = record["layout"]["boxes"][0].get("angle", 0)
        for k, text in enumerate(texts[:4]):
            n = int(sample["label_lengths"][k])
            if angle:
                assert n == 0  # rotated lines are left out of the text-perceptual loss
                continue
            decoded = "".join(CHARSET[i - 1] for i in sample["labels"][k, :n].tolist())
            assert decoded == text.strip()
        assert sample["label_lengths"][len(texts) :].sum() == 0


def test_mask_source_refuses_samples_without_stored_ink(tmp_path, shards, tokenizer):
    path = shard_paths(shards)[0]
    stripped = tmp_path / "no_mask.tar"
    with tarfile.open(path) as src, tarfile.open(stripped, "w") as dst:
        for member in src:
            if not member.name.endswith(".mask.png"):
                dst.addfile(member, src.extractfile(member))
    stream = GlyphTripleStream([stripped], resolution=64, tokenizer=tokenizer, glyph_source="mask")
    key, files = next(_iter_raw(stripped))
    with pytest.raises(ValueError, match=r"no_mask.tar: 000000000: no mask.png"):
        stream.decode(stripped.name, key, files, dropped=False)
    with pytest.raises(ValueError, match="glyph_source must be one of"):
        GlyphTripleStream([stripped], resolution=64, tokenizer=tokenizer, glyph_source="ink")


def test_memory_set_batches_are_a_function_of_seed_and_step(shards, tokenizer):
    data = MemoryTriples.build(shard_paths(shards), resolution=64, tokenizer=tokenizer, glyph_source="mask")
    assert len(data) == 12 and data.skipped == 0
    a = data.batch(step=3, batch_size=5, seed=7, caption_dropout=0.5)
    b = data.batch(step=3, batch_size=5, seed=7, caption_dropout=0.5)
    c = data.batch(step=4, batch_size=5, seed=7, caption_dropout=0.5)
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and a["caption"] == b["caption"]
    assert not torch.equal(a["pixel_values"], c["pixel_values"]) or a["caption"] != c["caption"]
    assert a["pixel_values"].shape == (5, 3, 64, 64) and a["conditioning"].shape == (5, 64, 64)
    # caption dropout: empty captions get the empty prompt's ids
    many = data.batch(step=0, batch_size=64, seed=1, caption_dropout=0.5)
    dropped = [i for i, cap in enumerate(many["caption"]) if cap == ""]
    assert 16 < len(dropped) < 48
    for i in dropped:
        assert torch.equal(many["input_ids"][i], data.empty_ids)
    # the stored sample tensors are not modified by dropout in a batch
    assert all(cap for cap in data.captions)


def test_memory_set_cache_round_trip(tmp_path, shards, tokenizer):
    paths = shard_paths(shards)
    first = MemoryTriples.build(paths, resolution=64, tokenizer=tokenizer, glyph_source="render", cache=tmp_path)
    cached = sorted(tmp_path.glob("triples-*"))
    assert [p.suffix for p in cached] == [".json", ".safetensors"]
    again = MemoryTriples.build(paths, resolution=64, tokenizer=tokenizer, glyph_source="render", cache=tmp_path)
    assert again.captions == first.captions
    for key, value in first.tensors.items():
        assert torch.equal(value, again.tensors[key]), key
    # another glyph source is another entry, not a stale hit
    MemoryTriples.build(paths, resolution=64, tokenizer=tokenizer, glyph_source="mask", cache=tmp_path)
    assert len(list(tmp_path.glob("triples-*.safetensors"))) == 2


def test_memory_set_records_undecodable_samples(tmp_path, shards, tokenizer):
    path = shard_paths(shards)[0]
    broken = tmp_path / "broken.tar"
    with tarfile.open(path) as src, tarfile.open(broken, "w") as dst:
        for i, member in enumerate(src):
            data = src.extractfile(member).read()
            if member.name.endswith(".json") and i < 3:
                data = b"{not json"
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    data = MemoryTriples.build([broken], resolution=64, tokenizer=tokenizer)
    assert data.skipped == 1 and len(data) == 3  # inputs = decoded + skipped
