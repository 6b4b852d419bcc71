"""Hostile but realistic input to every command: one clean error line, a non-zero exit, no traceback, and no new or
damaged output file. Each case runs in-process through ``textgen.cli.main`` and fails before any model loads."""

import errno
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from textgen import cli

ZWSP, ZWJ, BOM = "\u200b", "\u200d", "\ufeff"
OPEN = 'A poster that says "OPEN"'


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A working folder with one good layout, a prompt file, a folder of images and the output paths."""
    monkeypatch.chdir(tmp_path)
    good = {"width": 128, "height": 128, "boxes": [{"text": "OPEN", "box": [0.1, 0.3, 0.9, 0.7]}]}
    Path("good.json").write_text(json.dumps(good))
    Path("prompts.jsonl").write_text(json.dumps({"prompt": OPEN}) + "\n")
    Path("images").mkdir()
    Image.new("RGB", (64, 64), "white").save("images/a.png")
    Path("images/a.json").write_text(json.dumps(good))
    Path("existing.png").write_bytes(b"precious")
    return tmp_path


def _layout(path: str, text: str = "OPEN", box=(0.1, 0.3, 0.9, 0.7), **box_fields) -> str:
    data = {"width": 128, "height": 128, "boxes": [{"text": text, "box": list(box), **box_fields}]}
    Path(path).write_text(json.dumps(data))
    return path


# (name, argv builder, expected text in the error line)
CASES = [
    # render: malformed and extreme layouts, sizes, texts
    ("render-missing", lambda: ["render", "nope.json", "-o", "out.png"], "nope.json"),
    ("render-folder", lambda: ["render", ".", "-o", "out.png"], ""),
    ("render-bad-json", lambda: (Path("bad.json").write_text("{oops"), ["render", "bad.json", "-o", "out.png"])[1],
     "invalid JSON"),
    ("render-zwsp", lambda: ["render", _layout("z.json", ZWSP), "-o", "out.png"], "no visible character"),
    ("render-zwj-bom", lambda: ["render", _layout("z.json", ZWJ + BOM), "-o", "out.png"], "no visible character"),
    ("render-tab", lambda: ["render", _layout("t.json", "A\tB"), "-o", "out.png"], "TAB"),
    ("render-bel", lambda: ["render", _layout("b.json", "A\x07"), "-o", "out.png"], "BEL"),
    ("render-esc", lambda: ["render", _layout("e.json", "A\x1b[31m"), "-o", "out.png"], "ESC"),
    ("render-10k", lambda: ["render", _layout("l.json", "x" * 10000), "-o", "out.png"], "at most 500"),
    ("render-nan-box", lambda: ["render", _layout("n.json", box=(0.1, "NaN", 0.9, 0.7)), "-o", "out.png"], ""),
    ("render-inf-box", lambda: ["render", _layout("i.json", box=(0.1, 0.2, "Infinity", 0.7)), "-o", "out.png"], ""),
    ("render-inverted", lambda: ["render", _layout("v.json", box=(0.9, 0.3, 0.1, 0.7)), "-o", "out.png"], "x1"),
    ("render-outside", lambda: ["render", _layout("o.json", box=(0.1, 0.3, 1.5, 0.7)), "-o", "out.png"],
     "outside the canvas"),
    ("render-huge", lambda: ["render", "good.json", "-o", "out.png", "--size", "100000x100000"], "16384"),
    ("render-overflow", lambda: ["render", "good.json", "-o", "out.png", "--size", "99999999999x1"], "16384"),
    ("render-zero", lambda: ["render", "good.json", "-o", "out.png", "--size", "0x10"], "positive"),
    ("render-pixels", lambda: ["render", "good.json", "-o", "out.png", "--size", "16000x16000"], "pixels"),
    ("render-color", lambda: ["render", _layout("c.json", color="notacolour"), "-o", "out.png"], "not a colour"),
    ("render-into-folder", lambda: ["render", "good.json", "-o", "images"], "folder"),
    # layout
    ("layout-zwsp", lambda: ["layout", "x", "--text", ZWSP, "-o", "out.json"], "no visible character"),
    ("layout-surrogate", lambda: ["layout", "x", "--text", "a\udc80", "-o", "out.json"], "surrogate"),
    ("layout-huge", lambda: ["layout", OPEN, "-o", "out.json", "--size", "100000x100000"], "16384"),
    # generate: numbers, texts, paths (all refused before the model loads)
    ("gen-steps-neg", lambda: ["generate", OPEN, "-o", "out.png", "--steps", "-3"], "--steps"),
    ("gen-steps-zero", lambda: ["generate", OPEN, "-o", "out.png", "--steps", "0"], "--steps"),
    ("gen-guidance-inf", lambda: ["generate", OPEN, "-o", "out.png", "--guidance", "inf"], "--guidance"),
    ("gen-guidance-nan", lambda: ["generate", OPEN, "-o", "out.png", "--guidance", "nan"], "--guidance"),
    ("gen-control-nan", lambda: ["generate", OPEN, "-o", "out.png", "--control-scale", "nan"], "--control-scale"),
    ("gen-control-neg", lambda: ["generate", OPEN, "-o", "out.png", "--control-scale", "-1"], "--control-scale"),
    ("gen-best-of", lambda: ["generate", OPEN, "-o", "out.png", "--best-of", "0"], "--best-of"),
    ("gen-size", lambda: ["generate", OPEN, "-o", "out.png", "--size", "100000x100000"], "16384"),
    ("gen-model-missing", lambda: ["generate", OPEN, "-o", "out.png", "--model", "/nonexistent"],
     "no such model folder"),
    ("gen-zwsp", lambda: ["generate", OPEN, "-o", "out.png", "--texts", ZWSP], "no visible character"),
    ("gen-empty-prompt", lambda: ["generate", "   ", "-o", "out.png"], "prompt is empty"),
    ("gen-layout-bad", lambda: ["generate", OPEN, "-o", "out.png", "--layout", _layout("z.json", ZWSP)],
     "no visible character"),
    ("gen-seed-neg", lambda: ["generate", OPEN, "-o", "out.png", "--seed", "-1"], "--seed"),
    # evaluate
    ("eval-steps", lambda: ["evaluate", "--prompts", "prompts.jsonl", "-o", "rep", "--steps", "-1"], "--steps"),
    ("eval-guidance", lambda: ["evaluate", "--prompts", "prompts.jsonl", "-o", "rep", "--guidance", "nan"],
     "--guidance"),
    ("eval-both", lambda: ["evaluate", "images", "--prompts", "prompts.jsonl", "-o", "rep"], "either"),
    ("eval-missing", lambda: ["evaluate", "nowhere", "-o", "rep"], "nowhere"),
    ("eval-escape", lambda: (Path("images/manifest.jsonl").write_text(json.dumps(
        {"image": "../../../../etc/passwd", "texts": ["x"]}) + "\n"), ["evaluate", "images", "-o", "rep"])[1],
     "outside"),
    # edit: images, boxes, texts, replacements (all refused before the model loads)
    ("edit-missing", lambda: ["edit", "nope.png", "-o", "out.png", "--box", "1,1,9,9", "--text", "A"], "nope.png"),
    ("edit-not-image", lambda: (Path("in_x.png").write_text("not an image"),
                                ["edit", "in_x.png", "-o", "out.png", "--box", "1,1,9,9", "--text", "A"])[1],
     "not a readable image"),
    ("edit-box-outside", lambda: ["edit", "images/a.png", "-o", "out.png", "--box", "10,10,90,20", "--text", "A"],
     "outside the 64x64 image"),
    ("edit-box-empty", lambda: ["edit", "images/a.png", "-o", "out.png", "--box", "30,10,20,20", "--text", "A"],
     "empty or outside"),
    ("edit-box-syntax", lambda: ["edit", "images/a.png", "-o", "out.png", "--box", "1,2,3", "--text", "A"],
     "X0,Y0,X1,Y1"),
    ("edit-mismatch", lambda: ["edit", "images/a.png", "-o", "out.png", "--box", "1,1,9,9"], "one --text per --box"),
    ("edit-nothing", lambda: ["edit", "images/a.png", "-o", "out.png"], "nothing to edit"),
    ("edit-replace-syntax", lambda: ["edit", "images/a.png", "-o", "out.png", "--replace", "OPEN"], "OLD=NEW"),
    ("edit-zwsp", lambda: ["edit", "images/a.png", "-o", "out.png", "--box", "1,1,60,30", "--text", ZWSP],
     "no visible character"),
    ("edit-steps-neg", lambda: ["edit", "images/a.png", "-o", "out.png", "--box", "1,1,9,9", "--text", "A",
                                "--steps", "-3"], "--steps"),
    # ui: refused before the server starts
    ("ui-canvas", lambda: ["ui", "--canvas", "0x10"], "canvas"),
    # synth, prep, trainers
    ("synth-n-neg", lambda: ["synth", "-o", "s", "--n", "-1"], "n must be"),
    ("synth-size", lambda: ["synth", "-o", "s", "--n", "1", "--size", "8"], "size must be"),
    ("synth-workers", lambda: ["synth", "-o", "s", "--n", "1", "--workers", "0"], "workers"),
    ("prep-missing", lambda: ["prep", "nowhere", "-o", "p"], "nowhere"),
    ("train-missing-shards", lambda: ["train-controlnet", "--train_shards", "nowhere", "--output_dir", "t",
                                      "--init_config", "{}", "--train_unet"], "nowhere"),
    ("train-bad-json", lambda: ["train-controlnet", "--train_shards", "images", "--output_dir", "t",
                                "--init_config", "{nope", "--train_unet"], ""),
    ("train-recognizer-modes", lambda: ["train-recognizer", "-o", "r", "--modes", "fancy"], "unknown synth mode"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_ends_in_one_clean_error(env, capsys, monkeypatch, name, argv, expected):
    from textgen.pipeline import PosterPipeline

    def no_model(*args, **kwargs):  # every refusal must come before a model loads
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(PosterPipeline, "from_pretrained", no_model)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in env.rglob("*") if p.is_file()}
    args = argv()
    with pytest.raises(SystemExit) if _argparse_case(name) else _nullcontext():
        code = cli.main(args)
        assert code != 0
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1] if err else ""
    assert last.startswith("textgen") and "error:" in last, err
    assert expected in last, last
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in env.rglob("*") if p.is_file()}
    created = {p for p in after if p not in before and not _is_input(p)}
    assert not created, f"{name}: left {sorted(map(str, created))}"
    assert all(after[p] == before[p] for p in before if p in after and not _is_input(p)), "an output was modified"


def _argparse_case(name: str) -> bool:
    return name in {
        "render-huge", "render-overflow", "render-zero", "render-pixels", "layout-huge", "gen-steps-neg",
        "gen-steps-zero", "gen-guidance-inf", "gen-guidance-nan", "gen-control-nan", "gen-control-neg",
        "gen-best-of", "gen-size", "gen-seed-neg", "eval-steps", "eval-guidance", "synth-size-choice",
        "edit-steps-neg", "ui-canvas",
    }  # fmt: skip


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _is_input(path: Path) -> bool:
    # files the case itself wrote as its input (layouts, manifests, in_* files); never outputs
    return (
        path.suffix in (".json", ".jsonl")
        and path.parent.name in ("", "images")
        or path.name.endswith(".json")
        or path.name.startswith("in_")
    )


def test_full_disk_leaves_the_previous_output_untouched(env, monkeypatch, capsys):
    """render over an existing PNG when the write fails half-way (ENOSPC): the old file stays whole."""
    Image.new("RGB", (8, 8), "red").save("keep.png")
    original = Path("keep.png").read_bytes()
    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    code = cli.main(["render", "good.json", "-o", "keep.png"])
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert code != 0
    assert "No space left" in capsys.readouterr().err
    assert Path("keep.png").read_bytes() == original
    assert not [p for p in env.iterdir() if ".partial" in p.name]


def test_two_outputs_appear_together_or_not_at_all(env, monkeypatch, capsys):
    """layout --glyph: when the glyph cannot be written, the layout JSON is not left behind either."""
    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    code = cli.main(["layout", OPEN, "-o", "plan.json", "--glyph", "plan.png"])
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert code != 0
    assert not Path("plan.json").exists() and not Path("plan.png").exists()
    assert not [p for p in env.iterdir() if ".partial" in p.name]


def test_prep_rejects_a_fifo_instead_of_hanging(env):
    import subprocess
    import sys

    os.mkfifo("images/pipe.jpg")
    argv = [sys.executable, "-m", "textgen.cli", "prep", "images", "-o", "prepped", "--engine", "rapidocr",
            "--no-progress", "--keep-no-text", "--min-side", "8"]  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    env_vars = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    # a reader that opened the FIFO would block forever: the timeout turns that hang into a failure
    subprocess.run(argv, check=True, capture_output=True, timeout=300, env=env_vars)
    summary = json.loads(Path("prepped/summary.json").read_text())
    assert summary["inputs"] == summary["written"] + summary["rejected_total"] == 2
    assert summary["rejected"] == {"not_a_regular_file": 1}
    assert not list(Path("prepped").glob("*.partial"))
