"""Paired comparison of ``textgen evaluate`` reports: which arm reads more lines, and is the gap more than noise?

Each arm is one or more report folders (``report.json`` inside) evaluated on the same prompts with the same seeds
as the first arm (the baseline). Lines are matched by image name and line index, so the comparison is paired: for
each arm the table counts the lines only the baseline reads, only the arm reads, and gives the two-sided exact
McNemar p-value of that split (a binomial test on the discordant lines). Sentence Accuracy comes with its 95%
Wilson interval: at 65 lines it is about +-0.07 wide at 0.9, which is why small sets cannot rank close arms.

Usage: python recipes/compare_reports.py shipped=runs/a,runs/b edit=runs/c,runs/d [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_lines(folders: Sequence[Path]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Every scored line of the reports, keyed by (folder position, image name, line index).

    Raises:
        FileNotFoundError: a folder without ``report.json``.
    """
    out = {}
    for position, folder in enumerate(folders):
        path = Path(folder) / "report.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report.json (is {folder} a textgen evaluate output folder?)")
        for image in json.loads(path.read_text(encoding="utf-8"))["images"]:
            for i, line in enumerate(image.get("lines") or []):
                out[(str(position), image["name"], i)] = line
    return out


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the discordant lines split as a fair coin would split them."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(arms: dict[str, Sequence[Path]]) -> list[dict[str, Any]]:
    """One row per arm, the first arm the baseline (see the module docstring).

    Raises:
        ValueError: an arm whose lines are not the baseline's (other prompts or seeds).
    """
    names = list(arms)
    base = read_lines(arms[names[0]])
    rows = []
    for name in names:
        lines = read_lines(arms[name])
        if set(lines) != set(base):
            raise ValueError(f"arm {name!r} has {len(lines)} lines, not the baseline's {len(base)}: compare the "
                             "same prompts and seeds")  # fmt: skip
        if any(lines[k]["target"] != base[k]["target"] for k in base):
            raise ValueError(f"arm {name!r}: its lines ask for other texts than the baseline's")
        exact = sum(bool(line["exact"]) for line in lines.values())
        only_base = sum(bool(base[k]["exact"]) and not lines[k]["exact"] for k in base)
        only_arm = sum(bool(lines[k]["exact"]) and not base[k]["exact"] for k in base)
        low, high = wilson(exact, len(lines))
        rows.append({
            "arm": name, "lines": len(lines), "sentence_accuracy": exact / len(lines),
            "ci95": [round(low, 3), round(high, 3)],
            "ned": sum(float(line["ned"]) for line in lines.values()) / len(lines),
            "only_baseline": only_base, "only_arm": only_arm, "mcnemar_p": mcnemar_p(only_base, only_arm),
        })  # fmt: skip
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    head = (
        f"| arm | lines | Sentence Acc (95% CI) | NED | read only by {rows[0]['arm']} | read only by the arm "
        "| McNemar p |\n|---|---:|---|---:|---:|---:|---:|"
    )
    body = []
    for i, r in enumerate(rows):
        paired = f"{r['only_baseline']} | {r['only_arm']} | {r['mcnemar_p']:.3f}" if i else "- | - | -"
        body.append(
            f"| {r['arm']} | {r['lines']} | {r['sentence_accuracy']:.3f} ({r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}) "
            f"| {r['ned']:.3f} | {paired} |"
        )
    return "\n".join([head, *body])


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arms", nargs="+", metavar="NAME=DIR[,DIR...]", help="the first arm is the baseline")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    arms = {}
    for spec in args.arms:
        name, sep, dirs = spec.partition("=")
        if not sep or not name or not dirs:
            parser.error(f"{spec!r}: expected NAME=DIR[,DIR...]")
        arms[name] = [Path(d) for d in dirs.split(",")]
    try:
        rows = compare(arms)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
