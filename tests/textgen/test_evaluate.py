"""textgen.evaluate: reading boxes, scoring images, folder / prompt-set evaluation, the report and the CLI.

Most tests use a scripted OCR engine (fast, exact); the glyph sanity checks use the real default engine: glyph
images are the best any generator can do, so they must score Sentence Accuracy 1.0.
"""

import json
import re
from types import SimpleNamespace

import pytest
from PIL import Image

from textgen import Layout, TextBox, render_glyph
from textgen.cli import main
from textgen.core.metrics import LineScore, WordScore
from textgen.core.shards import OCRBox
from textgen.evaluate import (
    ClipScorer,
    EvalOptions,
    EvalSample,
    ImageResult,
    PromptSpec,
    aggregate,
    crop_box,
    evaluate_folder,
    evaluate_images,
    evaluate_prompts,
    evaluate_samples,
    load_folder,
    load_prompts,
    read_boxes,
    sample_from_entry,
)


class ScriptedOCR:
    """The n-th image read returns the n-th entry of a script (a list of readings); records what it was shown."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)
        self.seen = []

    def read(self, image):
        texts = self.script[len(self.seen) % len(self.script)]
        self.seen.append(image.copy())
        w, h = image.size
        return [OCRBox.from_polygon(t, [[0, 0], [w, 0], [w, h], [0, h]], 0.9, "en") for t in texts]


@pytest.fixture(scope="module")
def engine():
    from textgen.core.ocr import get_engine

    return get_engine("rapidocr", threads=1)


def _stacked_layout(texts, size=256, caption=None, **box_kwargs):
    n = len(texts)
    boxes = tuple(
        TextBox(t, (0.08, 0.08 + i * 0.84 / n + 0.02, 0.92, 0.08 + (i + 1) * 0.84 / n - 0.02), **box_kwargs)
        for i, t in enumerate(texts)
    )
    return Layout(size, size, boxes, caption=caption)


# -------------------------------------------------------------------------------------- glyph sanity (real OCR)
GLYPH_LAYOUTS = [
    Layout(
        512,
        512,
        (
            TextBox("SUMMER SALE", (0.08, 0.08, 0.92, 0.30), font="league-spartan"),
            TextBox("today only", (0.55, 0.80, 0.95, 0.96), angle=10),
        ),
    ),
    _stacked_layout(["OPEN", "24/7"]),
    _stacked_layout(["STOP NOW"], size=128),
    _stacked_layout(["Hello, World!", "$9.99", "50% OFF"], font="noto-serif"),
    _stacked_layout(["happy hour", "Jazz Night"], font="comic-neue"),
]


def test_glyph_images_score_sentence_accuracy_one(engine):
    images = [render_glyph(layout) for layout in GLYPH_LAYOUTS]
    report = evaluate_images(images, GLYPH_LAYOUTS, engine, text_colors=["black"] * 5, background_colors=["white"] * 5)
    agg = report.aggregates
    misread = [(line.target, line.read) for r in report.results for line in r.lines if not line.exact]
    assert agg["anytext"]["lines"] == 10
    assert agg["anytext"]["sentence_accuracy"] == 1.0, misread
    assert agg["anytext"]["ned"] == 1.0
    assert agg["glyphcontrol"]["acc"] == 1.0
    assert agg["textdiffuser"]["f_measure"] == 1.0 and agg["textdiffuser"]["accuracy"] == 1.0
    assert agg["color"]["text_accuracy"] == 1.0 and agg["color"]["background_accuracy"] == 1.0


def test_a_wrong_image_scores_low(engine):
    layout = _stacked_layout(["OPEN", "24/7"])
    wrong = render_glyph(_stacked_layout(["SHUT", "9-5"]))
    blank = Image.new("RGB", (256, 256), "white")
    report = evaluate_images([wrong, blank], [layout, layout], engine)
    wrong_result, blank_result = report.results
    assert wrong_result.scores()["sentence_accuracy"] == 0.0 and wrong_result.scores()["ned"] < 0.5
    assert blank_result.detections == [] and blank_result.scores()["ned"] == 0.0
    assert blank_result.scores()["ld"] == 4.0  # distance to the empty string
    # GlyphControl's own LD average skips images where nothing was read
    assert report.aggregates["glyphcontrol"]["ld_detected"] == pytest.approx(wrong_result.scores()["ld"])


# ------------------------------------------------------------------------------------ reading (scripted OCR)
def test_crop_box_pads_and_isolates_the_box():
    image = Image.new("RGB", (100, 50), (10, 200, 30))
    image.paste((255, 0, 0), (0, 0, 5, 5))  # something outside the box
    crop = crop_box(image, (10, 10, 30, 20), EvalOptions(crop_canvas="none"))
    assert crop.size == (28, 18)  # 4 px minimum margin on each side
    square = crop_box(image, (10, 10, 30, 20), EvalOptions(crop_canvas="square"))
    assert square.size == (28, 28) and square.getpixel((0, 0)) == (10, 200, 30)
    isolated = crop_box(image, (10, 10, 30, 20))
    assert isolated.size == (100, 50)  # the detector sees the box at the whole image's scale
    assert isolated.getpixel((1, 1)) == (10, 200, 30)  # only the box is visible, the rest is its border colour
    edge = crop_box(image, (0, 40, 100, 50), EvalOptions(crop_canvas="none"))
    assert edge.size == (100, 14)  # clipped to the image
    with pytest.raises(ValueError, match="crop_canvas must be one of"):
        EvalOptions(crop_canvas="round")


def test_read_boxes_reads_each_box_from_its_own_crop_in_layout_order():
    layout = Layout(200, 100, (TextBox("A", (0.0, 0.0, 0.5, 0.5)), TextBox("B", (0.5, 0.5, 1.0, 1.0))))
    image = Image.new("RGB", (400, 200), "white")  # twice the layout's canvas: boxes scale
    image.paste((0, 0, 0), (300, 150, 310, 160))  # "ink" in box B only
    ocr = ScriptedOCR([["A"], ["B", "C"]])
    assert read_boxes(image, layout, ocr) == ["A", "B C"]
    assert len(ocr.seen) == 2
    assert ocr.seen[0].getpixel((305, 155)) == (255, 255, 255)  # box A's view hides box B
    assert ocr.seen[1].getpixel((305, 155)) == (0, 0, 0)


def test_scores_of_one_sample_with_scripted_ocr():
    layout = _stacked_layout(["OPEN", "NOW"])
    # per-box reads, then the whole image
    ocr = ScriptedOCR([["OPEN"], ["N0W"], ["open", "NOW", "extra"]])
    (result,) = evaluate_images([render_glyph(layout)], [layout], ocr).results
    assert [line.exact for line in result.lines] == [True, False]
    s = result.scores()
    assert s["sentence_accuracy"] == 0.5 and s["ned"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["acc"] == 0.5 and s["acc_case_insensitive"] == 1.0
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == 1.0 and s["accuracy"] == 0.0


def test_texts_without_layout_skip_per_box_metrics():
    ocr = ScriptedOCR([["SALE"]])
    report = evaluate_images([Image.new("RGB", (64, 64), "white")], [["SALE"]], ocr)
    (result,) = report.results
    assert result.lines is None and result.scores()["acc"] == 1.0
    assert len(ocr.seen) == 1  # only the whole image was read
    assert report.aggregates["anytext"]["lines"] == 0 and report.aggregates["anytext"]["sentence_accuracy"] is None


def test_aggregates_pool_like_the_papers():
    def result(lines, precision, recall):
        return ImageResult(
            name="x",
            texts=["t"],
            lines=[LineScore("t", "t" if ok else "", ok, 1.0 if ok else 0.0) for ok in lines],
            targets=[],
            words=WordScore(precision, recall, 0.0, False, 0, (), ()),
        )

    results = [result([True], 1.0, 0.5), result([True, False, False], 0.5, 1.0), ImageResult("bad", ["t"], error="x")]
    agg = aggregate(results)
    assert agg["images"] == {"total": 3, "evaluated": 2, "failed": 1}
    assert agg["anytext"]["sentence_accuracy"] == 0.5  # over lines (2 of 4), not images (mean 0.67)
    assert agg["textdiffuser"]["f_measure"] == pytest.approx(0.75)  # from mean P and R, not mean F (0.67)


# ------------------------------------------------------------------------------------------------ bad input
def test_evaluate_images_bad_input():
    image = Image.new("RGB", (32, 32))
    with pytest.raises(ValueError, match="2 layouts_or_texts for 1 images"):
        evaluate_images([image], [["a"], ["b"]], ScriptedOCR([[]]))
    with pytest.raises(ValueError, match="image 0 .*no intended text"):
        evaluate_images([image], [[]], ScriptedOCR([[]]))
    with pytest.raises(ValueError, match="disagree with the layout"):
        sample_from_entry({"texts": ["A"], "layout": _stacked_layout(["B"]).to_dict()}, where="m:1", name="a")


def test_unknown_colour_name_skips_only_the_colour_check():
    layout = _stacked_layout(["A"])
    report = evaluate_images(
        [render_glyph(layout)],
        [layout],
        ScriptedOCR([["A"]]),
        background_colors=["blurple"],
        options=EvalOptions(palette="basic"),
    )
    (result,) = report.results
    assert result.error is None and result.scores()["sentence_accuracy"] == 1.0
    assert result.background_color is None and "'blurple' is not a colour" in result.notes[0]


def test_unreadable_image_is_recorded_not_raised(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    samples = [
        EvalSample(name="bad.png", texts=["A"], path=bad),
        EvalSample("ok", ["A"], image=Image.new("RGB", (8, 8))),
    ]
    report = evaluate_samples(samples, ScriptedOCR([["A"]]))
    assert report.results[0].error.startswith("UnidentifiedImageError")
    assert report.aggregates["images"] == {"total": 2, "evaluated": 1, "failed": 1}


def _write_glyph_folder(folder, layouts):
    folder.mkdir(parents=True, exist_ok=True)
    for i, layout in enumerate(layouts):
        render_glyph(layout).save(folder / f"g{i}.png")
        layout.save(folder / f"g{i}.json")


def test_load_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no images"):
        load_folder(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match=r"a\.png: no intended text: expected a sidecar a\.json"):
        load_folder(tmp_path)
    (tmp_path / "a.json").write_text('{"boxes": []}')
    with pytest.raises(ValueError, match="a.json: no intended text"):
        load_folder(tmp_path)
    (tmp_path / "manifest.jsonl").write_text(
        '{"image": "a.png", "texts": ["X"]}\n{"image": "b.png", "texts": ["Y"]}\n'
    )
    with pytest.raises(FileNotFoundError, match=r"manifest.jsonl:2: image 'b.png' not found"):
        load_folder(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"image": "a.png", "prompt": "p"}\n')
    with pytest.raises(ValueError, match=r"manifest.jsonl:1: no intended text"):
        load_folder(tmp_path)


def test_folder_with_manifest_and_synth_records_checks_colours(tmp_path):
    from data_prep.synth import make_sample

    lines = []
    for i in range(8):
        sample = make_sample(11, i)
        sample.image.save(tmp_path / f"s{i}.png")
        (tmp_path / f"s{i}.json").write_text(sample.record.to_json())  # a triple record as sidecar
        lines.append(json.dumps({"image": f"s{i}.png", "layout": sample.record.layout.to_dict(), "text_color": "red"}))
    samples = load_folder(tmp_path)  # sidecars: triple records
    assert samples[0].background_color == make_sample(11, 0).record.source["background"]["colors"]
    report = evaluate_folder(tmp_path, ScriptedOCR([["x"]]))
    agg = report.aggregates["color"]
    assert agg["text_boxes"] >= 8 and agg["text_accuracy"] >= 0.8  # the layouts store the painted colours
    assert agg["backgrounds"] == 8 and agg["background_accuracy"] >= 0.85
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines[:3]) + "\n")
    assert [s.name for s in load_folder(tmp_path)] == ["s0.png", "s1.png", "s2.png"]  # the manifest wins


# ------------------------------------------------------------------------------------------------- prompts
class GlyphPipeline:
    """A stand-in generator: plans one box per quoted word and returns the glyph itself as the image."""

    def __init__(self):
        self.calls = []

    def __call__(self, prompt, num_images_per_prompt=1, seed=None, texts=None, num_inference_steps=None, **kw):
        self.calls.append({"prompt": prompt, "seed": seed, "texts": texts, "steps": num_inference_steps, **kw})
        layout = _stacked_layout(texts or re.findall(r'"([^"]+)"', prompt), caption=prompt)
        glyph = render_glyph(layout)
        return SimpleNamespace(images=[glyph.copy() for _ in range(num_images_per_prompt)], layout=layout, glyph=glyph)


def test_load_prompts(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text('# a comment\nA sign that says "OPEN"\n\n  A cafe "CAFE"  \n')
    assert [p.prompt for p in load_prompts(txt)] == ['A sign that says "OPEN"', 'A cafe "CAFE"']
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a poster", "texts": ["SALE"], "seed": 5, "background_color": ["red", "white"]}\n')
    (spec,) = load_prompts(jsonl)
    assert spec == PromptSpec(prompt="a poster", texts=("SALE",), seed=5, background_color=("red", "white"))
    jsonl.write_text('{"prompt": "x", "texts": ["A"], "layout": {"boxes": [{"text": "A", "box": [0, 0, 1, 1]}]}}\n')
    with pytest.raises(ValueError, match=r"p.jsonl:1: give 'texts' or 'layout', not both"):
        load_prompts(jsonl)
    jsonl.write_text('{"prompt": "x"}\n{"texts": ["A"]}\n')
    with pytest.raises(ValueError, match=r"p.jsonl:2: expected an object with a non-empty 'prompt'"):
        load_prompts(jsonl)
    with pytest.raises(FileNotFoundError, match="no such prompt file"):
        load_prompts(tmp_path / "nope.txt")


def test_evaluate_prompts_with_a_glyph_pipeline(tmp_path, engine):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "A sign that says \\"OPEN\\" \\"24/7\\"", "text_color": "black", "background_color": "white"}\n'
        '{"prompt": "A poster", "texts": ["BIG SALE"], "seed": 42}\n'
        '{"prompt": "A cafe sign that says \\"Coffee\\"", "name": "cafe"}\n'
    )
    pipe = GlyphPipeline()
    out = tmp_path / "run"
    report = evaluate_prompts(pipe, prompts, engine, out_dir=out, seed=100, num_inference_steps=3)
    assert [c["seed"] for c in pipe.calls] == [100, 42, 102]
    assert pipe.calls[1]["texts"] == ["BIG SALE"] and all(c["steps"] == 3 for c in pipe.calls)
    assert "best_of" not in pipe.calls[0]  # optional arguments are only passed when used
    agg = report.aggregates
    assert agg["anytext"]["lines"] == 4 and agg["anytext"]["sentence_accuracy"] == 1.0  # the glyph sanity check
    assert agg["color"]["text_accuracy"] == 1.0 and agg["color"]["backgrounds"] == 1
    for name in ("0000_0.png", "0000_glyph.png", "0001_0.png", "cafe_0.png", "manifest.jsonl"):
        assert (out / "images" / name).is_file()
    data = json.loads((out / "report.json").read_text())
    assert data["meta"]["seed"] == 100 and data["images"][2]["name"] == "cafe_0.png"
    assert (out / data["images"][0]["thumbnail"]).is_file() and (out / data["images"][0]["glyph_thumbnail"]).is_file()
    assert "Coffee" in (out / "report.html").read_text()
    # the written images and manifest evaluate again as a folder
    again = load_folder(out / "images")
    assert [s.texts for s in again] == [["OPEN", "24/7"], ["BIG SALE"], ["Coffee"]]
    assert again[0].text_color == "black" and again[0].prompt.startswith("A sign")


def test_evaluate_prompts_passes_best_of_and_keeps_the_first_images(tmp_path):
    pipe = GlyphPipeline()
    report = evaluate_prompts(
        pipe,
        ['A "GO" sign'],
        ScriptedOCR([["GO"]]),
        out_dir=tmp_path,
        num_images_per_prompt=2,
        best_of=3,
        pipeline_kwargs={"guidance_scale": 2.0},
    )
    assert pipe.calls[0]["best_of"] == 3 and pipe.calls[0]["guidance_scale"] == 2.0
    assert [r.name for r in report.results] == ["0000_0.png", "0000_1.png"]

    def broken(prompt, **kwargs):
        return SimpleNamespace(images=[], layout=None, glyph=None)

    with pytest.raises(ValueError, match="no images or no layout"):
        evaluate_prompts(broken, ["x"], ScriptedOCR([[]]), out_dir=tmp_path / "b")


# ------------------------------------------------------------------------------------------------------ HTML
def test_report_html_escapes_text(tmp_path):
    layout = _stacked_layout(["<b>&"])
    report = evaluate_images([render_glyph(layout)], [layout], ScriptedOCR([["<script>"]]))
    paths = report.save(tmp_path)
    page = paths["html"].read_text()
    assert "&lt;script&gt;" in page and "<script>" not in page and "&lt;b&gt;&amp;" in page
    assert (tmp_path / "thumbs" / "0000.png").is_file()


# ------------------------------------------------------------------------------------------------------- CLI
def test_cli_folder_mode_writes_report(tmp_path, capsys):
    folder = tmp_path / "imgs"
    _write_glyph_folder(folder, [_stacked_layout(["OPEN"]), _stacked_layout(["FRESH", "bread"], size=128)])
    rc = main(["evaluate", str(folder), "-o", str(tmp_path / "report"), "--engine", "rapidocr"])
    assert rc == 0
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["engine"] == "rapidocr"
    assert data["aggregates"]["anytext"]["sentence_accuracy"] == 1.0
    assert [item["name"] for item in data["images"]] == ["g0.png", "g1.png"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert "thumbs/0001.png" in page and "bread" in page
    assert "AnyText Sentence Acc" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["MISSING", "-o", "out"], "no such folder"),
        (["-o", "out"], "give either an IMAGES folder or --prompts"),
        (["FOLDER", "--prompts", "p.txt", "-o", "out"], "give either an IMAGES folder or --prompts"),
        (["--prompts", "nope.txt", "-o", "out"], "no such prompt file"),
        (["NOSIDECAR", "-o", "out"], "no intended text: expected a sidecar"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    folder = tmp_path / "nosidecar"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    subs = {"MISSING": str(tmp_path / "missing"), "FOLDER": str(folder), "NOSIDECAR": str(folder)}
    rc = main(["evaluate", *[subs.get(a, a) for a in argv]])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1 and err.startswith("textgen evaluate: error:")


# ------------------------------------------------------------------------------------------------------ CLIP
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random-init CLIP built from a config, with an offline character-level tokenizer."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    path = tmp_path_factory.mktemp("tiny_clip")
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=32)
    text = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_clip_score_with_a_local_tiny_clip(tiny_clip):
    scorer = ClipScorer(tiny_clip, weight=2.5)
    images = [Image.new("RGB", (48, 40), "red"), Image.new("RGB", (40, 40), "blue")]
    scores = scorer(images, ["a red poster", "a blue sign that says OPEN and more words than fit in 32 tokens"])
    assert len(scores) == 2 and all(0.0 <= s <= 2.5 for s in scores)
    assert scorer(images, ["a red poster", "x"])[0] == pytest.approx(scores[0])  # pairwise, batch-independent
    report = evaluate_images(images[:1], [["SALE"]], ScriptedOCR([[]]), prompts=["a red poster"], clip=scorer)
    assert report.results[0].clip_score == pytest.approx(scores[0])
    assert report.aggregates["clip_score"]["images"] == 1
    with pytest.raises(FileNotFoundError, match="no such CLIP model folder"):
        ClipScorer(tiny_clip / "missing")


def test_one_option_has_one_spelling_across_commands_with_the_old_one_kept():
    from textgen.cli import build_parser

    parser = build_parser()
    evaluate = parser.parse_args(["evaluate", "imgs", "-o", "r", "--ocr-threads", "3", "--num-images", "2"])
    assert evaluate.threads == 3 and evaluate.n == 2
    assert parser.parse_args(["evaluate", "imgs", "-o", "r", "--threads", "2", "--n", "4"]).n == 4
    generate = parser.parse_args(["generate", "p", "-o", "x.png", "--n", "2"])
    assert generate.num_images == 2
