import json

from PIL import Image

from textgen.cli import main
from textgen.core.layout import Layout


def test_layout_command_writes_json_and_glyph(tmp_path, capsys):
    out, glyph = tmp_path / "layout.json", tmp_path / "glyph.png"
    prompt = 'A vintage poster for a jazz night that says "BLUE NOTE" and "every friday"'
    code = main(["layout", prompt, "-o", str(out), "--glyph", str(glyph), "--size", "640x480", "--seed", "3"])
    assert code == 0
    layout = Layout.load(out).validate()
    assert layout.texts == ["BLUE NOTE", "every friday"] and layout.size == (640, 480)
    assert layout.caption == prompt
    assert Image.open(glyph).size == (640, 480)
    assert "2 boxes: 'BLUE NOTE', 'every friday'" in capsys.readouterr().out
    # Same seed, same file.
    again = tmp_path / "again.json"
    main(["layout", prompt, "-o", str(again), "--size", "640x480", "--seed", "3"])
    assert json.loads(again.read_text()) == json.loads(out.read_text())


def test_layout_command_explicit_texts_and_no_texts(tmp_path, capsys):
    out = tmp_path / "layout.json"
    assert main(["layout", 'a sign "IGNORED"', "-o", str(out), "--text", "OPEN", "--text", "24/7"]) == 0
    assert Layout.load(out).texts == ["OPEN", "24/7"]
    assert main(["layout", "a photo of a cat", "-o", str(out)]) == 0
    assert Layout.load(out).boxes == ()
    assert "quotes no text" in capsys.readouterr().err


def test_layout_command_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "layout.json"
    assert main(["layout", 'a "X"', "-o", str(out), "--planner", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("textgen layout: error:") and "no such planner folder" in err and err.count("\n") == 1
    assert not out.exists()
