"""recipes/compare_reports.py: paired line-by-line comparison of evaluate reports, with intervals and McNemar."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes"))

import compare_reports  # noqa: E402


def _report(folder: Path, exact: list[bool], targets=None) -> Path:
    folder.mkdir(parents=True)
    targets = targets or [f"W{i}" for i in range(len(exact))]
    images = [{"name": f"{i:03d}.png", "lines": [{"target": t, "read": t if ok else "", "exact": ok,
                                                   "ned": 1.0 if ok else 0.0}]}
              for i, (ok, t) in enumerate(zip(exact, targets))]  # fmt: skip
    (folder / "report.json").write_text(json.dumps({"images": images}))
    return folder


def test_paired_counts_interval_and_mcnemar(tmp_path, capsys):
    base = _report(tmp_path / "base", [True] * 8 + [False] * 2)
    arm = _report(tmp_path / "arm", [False] * 6 + [True] * 2 + [True, False])  # loses 6, wins 1
    rows = compare_reports.main([f"base={base}", f"arm={arm}", "--json", str(tmp_path / "rows.json")])
    assert rows[0]["sentence_accuracy"] == 0.8 and rows[1]["sentence_accuracy"] == 0.3
    assert (rows[1]["only_baseline"], rows[1]["only_arm"]) == (6, 1)
    assert rows[1]["mcnemar_p"] == pytest.approx(2 * (1 + 7) / 2**7)  # P(X <= 1 | n=7, p=.5), two-sided
    low, high = rows[0]["ci95"]
    assert low < 0.8 < high and 0.4 < low < 0.5  # Wilson, 8 of 10
    table = capsys.readouterr().out
    assert "| arm | 10 | 0.300" in table and "| 6 | 1 | 0.125 |" in table
    assert json.loads((tmp_path / "rows.json").read_text())[1]["arm"] == "arm"


def test_several_folders_make_one_arm_and_mismatches_are_refused(tmp_path, capsys):
    a1, a2 = _report(tmp_path / "a1", [True, True]), _report(tmp_path / "a2", [True, False])
    b1, b2 = _report(tmp_path / "b1", [True, False]), _report(tmp_path / "b2", [True, True])
    rows = compare_reports.compare({"a": [a1, a2], "b": [b1, b2]})
    assert rows[1]["lines"] == 4 and (rows[1]["only_baseline"], rows[1]["only_arm"]) == (1, 1)
    assert rows[1]["mcnemar_p"] == 1.0
    other = _report(tmp_path / "other", [True, True], targets=["X", "Y"])
    with pytest.raises(ValueError, match="other texts"):
        compare_reports.compare({"a": [a1], "o": [other]})
    with pytest.raises(SystemExit):
        compare_reports.main([f"a={a1}", f"b={tmp_path / 'missing'}"])
    assert "no report.json" in capsys.readouterr().err
