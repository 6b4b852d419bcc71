"""Captions: the training caption form, and a captioning model loaded the way a user's would be.

The model is a tiny BLIP built from a config with random weights and a word-piece tokenizer written offline,
saved with ``save_pretrained`` and loaded back by :class:`data_prep.captions.Captioner` through the same
``from_pretrained`` path as ``Salesforce/blip-image-captioning-base``. Its captions are gibberish; what is
tested is the loading, batching, dtype, prompt handling and where the captions end up.
"""

from __future__ import annotations

import json
import string

import pytest

from data_prep.captions import (
    Captioner,
    CaptionerOptions,
    CaptionStage,
    TrainingCaptionOptions,
    training_caption,
)

PROMPT = "a photo of"


# ----------------------------------------------------------------------------------------- training form
def test_training_caption_appends_the_quoted_words():
    assert training_caption("a shop front.", ["OPEN", "24/7"]) == 'a shop front that reads "OPEN" "24/7"'
    assert training_caption(None, ["SALE"]) == 'an image that reads "SALE"'
    assert training_caption("  a   sign ", []) == "a sign"
    assert training_caption("", [" ", ""]) == ""


def test_training_caption_templates_are_configurable():
    opts = TrainingCaptionOptions(
        template="{caption}, with the text {words}", word_template="'{text}'", separator=", ", max_words=2
    )
    assert training_caption("a poster", ["A", "B", "C"], opts) == "a poster, with the text 'A', 'B'"
    anytext = TrainingCaptionOptions(word_template='"*"').validate()  # AnyText's placeholders for the words
    assert training_caption("a sign", ["OPEN", "NOW"], anytext) == 'a sign that reads "*" "*"'
    with pytest.raises(ValueError, match="must contain"):
        TrainingCaptionOptions(template="{caption}").validate()
    with pytest.raises(ValueError, match="only"):
        TrainingCaptionOptions(template="{caption} {words} {colour}").validate()


# -------------------------------------------------------------------------------------------- tiny model
@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    """A 32x32-pixel, one-layer BLIP captioner with a word-piece tokenizer, saved like a hub model."""
    torch = pytest.importorskip("torch")
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny_blip")
    words = ["a", "an", "the", "photo", "of", "sign", "red", "shop", "door", "with", "text"]
    letters = list(string.ascii_lowercase)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *words, *letters, *("##" + c for c in letters)]
    vocab = list(dict.fromkeys(vocab))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]", model_max_length=64)
    text_config = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "max_position_embeddings": 64,
        "bos_token_id": vocab.index("[DEC]"),
        "pad_token_id": 0,
        "sep_token_id": 3,
        "eos_token_id": 3,
    }
    vision_config = {
        "hidden_size": 32,
        "image_size": 32,
        "patch_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 37,
    }
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text_config, vision_config=vision_config))
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    model.save_pretrained(folder)  # safetensors
    processor.save_pretrained(folder)
    (folder / "vocab.txt").unlink(missing_ok=True)  # the saved tokenizer files must be enough
    return folder


def test_captioner_loads_a_saved_model_and_captions_in_batches(tiny_blip, kit):
    images = [kit.glyph_image(t, (96, 64)) for t in ("OPEN", "SALE", "CAFE")]
    captioner = Captioner(CaptionerOptions(model=str(tiny_blip), batch_size=2, max_new_tokens=6))
    calls = []
    generate = captioner.model.generate
    captioner.model.generate = lambda **kw: calls.append(kw["pixel_values"].shape[0]) or generate(**kw)
    captions = captioner(images)
    assert calls == [2, 1]  # batches of batch_size
    assert len(captions) == 3 and all(isinstance(c, str) and c == " ".join(c.split()) for c in captions)
    assert all(c for c in captions)
    assert captioner(images) == captions  # greedy decoding: the same captions again
    assert captioner.model.training is False


def test_captioner_dtype_and_prompt(tiny_blip, kit):
    import torch

    image = kit.glyph_image("OPEN", (64, 64))
    bf16 = Captioner(CaptionerOptions(model=str(tiny_blip), dtype="bfloat16", max_new_tokens=4))
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert isinstance(bf16([image])[0], str)
    prompted = Captioner(CaptionerOptions(model=str(tiny_blip), prompt=PROMPT, max_new_tokens=4))
    assert not prompted([image])[0].startswith(PROMPT)  # the prompt is not part of the caption


def test_captioner_errors_name_the_model(tmp_path):
    with pytest.raises(OSError, match="nope"):
        Captioner(CaptionerOptions(model=str(tmp_path / "nope"), local_files_only=True))
    with pytest.raises(ValueError, match="dtype"):
        CaptionerOptions(model="x", dtype="int8").validate()
    assert CaptionerOptions().trust_remote_code is False  # model repository code runs only when asked


def _rows(kit, captions):
    data = [kit.encode(kit.glyph_image("OPEN", (64, 64)), "PNG") for _ in captions]
    n = len(captions)
    box = {"text": "OPEN", "polygon": [[1, 1], [9, 1], [9, 5], [1, 5]], "box": [1, 1, 9, 5], "confidence": 1}
    return {
        "key": [f"00000_{i:06d}" for i in range(n)],
        "reject": [""] * (n - 1) + ["truncated"],
        "image": data,
        "caption": list(captions),
        "caption_source": ["source" if c else "" for c in captions],
        "source": ["{}"] * n,
        "ocr": [json.dumps([box])] * n,
        "training_caption": [""] * n,
        "seconds": ["{}"] * n,
    }


def test_caption_stage_keeps_source_captions_or_replaces_them(tiny_blip, kit):
    rows = _rows(kit, ["a red door", "", "unused"])
    kept = CaptionStage(CaptionerOptions(model=str(tiny_blip), max_new_tokens=4))(rows)
    assert kept["caption"][0] == "a red door" and kept["caption_source"][0] == "source"
    assert kept["caption"][1] and kept["caption_source"][1] == "captioner"
    assert kept["training_caption"][:2] == [f'{c} that reads "OPEN"' for c in kept["caption"][:2]]
    assert kept["caption_source"][2] == "source" and kept["training_caption"][2] == ""  # rejected row untouched

    always = CaptionStage(CaptionerOptions(model=str(tiny_blip), mode="always", max_new_tokens=4))(rows)
    assert always["caption_source"][:2] == ["captioner", "captioner"]
    assert json.loads(always["source"][0])["source_caption"] == "a red door"

    no_model = CaptionStage()(rows)
    assert no_model["caption"] == rows["caption"] and no_model["training_caption"][1] == 'an image that reads "OPEN"'


def test_prep_job_with_a_captioner(tiny_blip, tmp_path, kit):
    from data_prep.filters import FilterOptions
    from data_prep.runners import PrepConfig, run_prep
    from textgen.core.shards import iter_triples

    src = tmp_path / "in"
    src.mkdir()
    for name, text in (("a.png", "OPEN"), ("b.png", "SALE")):
        (src / name).write_bytes(kit.encode(kit.glyph_image(text), "PNG"))
    (src / "a.txt").write_text("a shop sign")
    config = PrepConfig(
        input=str(src),
        output=str(tmp_path / "out"),
        captioner=CaptionerOptions(model=str(tiny_blip), max_new_tokens=5),
        filters=FilterOptions(),
        progress=False,
    )
    summary = run_prep(config)
    assert summary["written"] == 2
    records = {t.record.source["path"]: t.record for t in iter_triples(tmp_path / "out")}
    assert records["a.png"].caption == "a shop sign" and records["a.png"].source["caption_source"] == "source"
    assert records["a.png"].training_caption == 'a shop sign that reads "OPEN"'
    assert records["b.png"].source["caption_source"] == "captioner" and records["b.png"].caption
    assert records["b.png"].training_caption.endswith('that reads "SALE"')
    stats = json.loads((tmp_path / "out" / "00000_stats.json").read_text())
    assert stats["captioned"] == 1 and stats["captioner"] == str(tiny_blip)
