"""Layout planner quality and speed on the shared prompt benchmarks.

Prompt sets (``PROMPTS/`` of the shared benchmarks folder, see its README): GlyphControl SimpleBench and
CreativeBench (4 x 100 prompts each, one quoted word), DrawBench's text category (21, single quotes) and
LeX-Bench easy (630, 2-4 quoted words). Ground truth comes from the sets themselves, not from the planner's
own text extraction: the SimpleBench word lists, the text between the first and last single quote of a
DrawBench prompt, LeX-Bench's ``text`` field.

Per planner and set, at 512x512:

* keyword recall: share of ground-truth texts placed exactly once (mean over prompts); exact: share of
  prompts whose layout holds exactly the ground-truth texts;
* boxes outside the canvas (count) and overlap rate (share of layouts with two overlapping boxes);
* smallest rendered text: the font size ``textgen.core.glyph.fit_text`` gives the smallest box of a layout, in px
  (median over layouts, and the minimum);
* planning time per prompt (median; for the rule planner the median of ``--runs`` runs per prompt, each with
  the text measurement caches cleared, so every run is as cold as a new prompt).

Planners: ``rule`` (the default planner), ``bands`` (a baseline measured in the same run: one full-width band
of equal height per text, as a planner with no design rules would do), and with ``--llm PATH`` an LLM planner
folder (e.g. the tiny planner :mod:`layout_model.train` writes), with and without constrained decoding, on the
first ``--llm-limit`` prompts of each set; its rows also give the share of answers that fell back to the rule
planner.

Usage: ``python benchmarks/bench_planner.py [--benchmarks ../shared/benchmarks] [--llm PLANNER_DIR]
[--out bench_results/planner.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from layout_model.measure import clear_caches
from layout_model.metrics import boxes_outside, keyword_recall, min_font_px, overlapping_pairs
from layout_model.rule import RulePlanner
from layout_model.text import extract_texts
from textgen.core.layout import Layout, TextBox

REPO_ROOT = Path(__file__).resolve().parents[1]
BUCKETS = ("top_1000", "1000_10000", "10000_100000", "100000_plus")
SIZE = 512

Item = tuple[str, list[str]]  # (prompt, ground-truth texts)


# ---------------------------------------------------------------------------------------------- prompt sets
def _glyphcontrol(prompts_dir: Path, kind: str) -> list[Item]:
    items = []
    for bucket in BUCKETS:
        words = [
            w.strip() for w in (prompts_dir / f"glyphcontrol_simplebench_{bucket}_words.txt").read_text().split("\n")
        ]
        lines = (prompts_dir / f"glyphcontrol_{kind}_{bucket}.txt").read_text(encoding="utf-8").splitlines()
        for line in lines:
            found = [w for w in words if w and f'"{w}"' in line]
            # The longest word quoted in the prompt ("man" is also inside "manoylo" only without quotes).
            items.append((line, [max(found, key=len)] if found else []))
    return items


def _drawbench(prompts_dir: Path) -> list[Item]:
    lines = (prompts_dir / "drawbench_text.txt").read_text(encoding="utf-8").splitlines()
    return [(line, [line[line.index("'") + 1 : line.rindex("'")]]) for line in lines if line.count("'") >= 2]


def _lexbench(prompts_dir: Path) -> list[Item]:
    rows = [
        json.loads(line) for line in (prompts_dir / "lexbench_easy.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return [(row["prompt"], list(row["text"])) for row in rows]


def load_sets(benchmarks: Path) -> dict[str, list[Item]]:
    """The four prompt sets with their ground-truth texts.

    Raises:
        FileNotFoundError: naming the missing folder or file.
    """
    prompts_dir = benchmarks / "prompts"
    if not prompts_dir.is_dir():
        raise FileNotFoundError(f"{prompts_dir}: no prompts folder (pass --benchmarks PATH/TO/shared/benchmarks)")
    return {
        "SimpleBench": _glyphcontrol(prompts_dir, "simplebench"),
        "CreativeBench": _glyphcontrol(prompts_dir, "creativebench"),
        "DrawBenchText": _drawbench(prompts_dir),
        "LeX-Bench easy": _lexbench(prompts_dir),
    }


# -------------------------------------------------------------------------------------------------- planners
class BandsPlanner:
    """Baseline: one full-width band of equal height per quoted text, top to bottom, 5% margins."""

    name_or_path = "bands"

    def plan(self, prompt: str, texts=None, width: int = 512, height: int = 512, seed: int = 0) -> Layout:
        found = extract_texts(prompt, texts)
        n = max(1, len(found))
        band = 0.9 / n
        boxes = tuple(TextBox(t, (0.05, 0.05 + i * band, 0.95, 0.05 + (i + 1) * band)) for i, t in enumerate(found))
        return Layout(width, height, boxes, caption=prompt)


def _time_plans(
    plan: Callable[[str, int], Layout], items: Sequence[Item], runs: int
) -> tuple[list[Layout], list[float]]:
    """Plans every prompt ``runs`` times; the per-prompt median time, each run with cold text measurements."""
    layouts: list[Layout] = []
    times: list[float] = []
    for i, (prompt, _) in enumerate(items):
        samples = []
        for _ in range(runs):
            clear_caches()  # every run measures its texts afresh, as for a new prompt
            start = time.perf_counter()
            layout = plan(prompt, i)
            samples.append(time.perf_counter() - start)
        layouts.append(layout)
        times.append(statistics.median(samples))
    return layouts, times


def measure(layouts: Sequence[Layout], items: Sequence[Item], times: Sequence[float]) -> dict[str, Any]:
    recalls = [keyword_recall(layout, gt) for layout, (_, gt) in zip(layouts, items)]
    exact = [
        sorted(" ".join(t.split()) for t in layout.texts) == sorted(" ".join(t.split()) for t in gt)
        for layout, (_, gt) in zip(layouts, items)
    ]
    min_px = [p for p in (min_font_px(layout, SIZE, SIZE) for layout in layouts) if p is not None]
    return {
        "prompts": len(items),
        "keyword_recall": sum(recalls) / len(recalls),
        "exact": sum(exact) / len(exact),
        "boxes_outside": sum(boxes_outside(layout) for layout in layouts),
        "overlap_rate": sum(overlapping_pairs(layout) > 0 for layout in layouts) / len(layouts),
        "min_text_px_median": statistics.median(min_px) if min_px else None,
        "min_text_px_min": min(min_px) if min_px else None,
        "plan_ms_median": statistics.median(times) * 1000,
    }


# ------------------------------------------------------------------------------------------------------ main
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        "| planner | set | prompts | keyword recall | exact | boxes outside | overlap rate "
        "| min text px (median / min) | plan ms (median) | fallback |"
    )
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        fallback = "-" if r.get("fallback_rate") is None else f"{r['fallback_rate']:.0%}"
        print(
            f"| {r['planner']} | {r['set']} | {r['prompts']} | {r['keyword_recall']:.1%} | {r['exact']:.1%} "
            f"| {r['boxes_outside']} | {r['overlap_rate']:.1%} | {_fmt(r['min_text_px_median'], 0)} / "
            f"{_fmt(r['min_text_px_min'], 0)} | {_fmt(r['plan_ms_median'], 3 if r['plan_ms_median'] < 1 else 1)} "
            f"| {fallback} |"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default=str(REPO_ROOT / ".." / "shared" / "benchmarks"),
                        help="shared benchmarks folder (default ../shared/benchmarks beside the repo)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="timed runs per prompt for model-free planners")
    parser.add_argument("--llm", help="an LLM planner folder to compare (e.g. a tiny trained planner)")
    parser.add_argument("--llm-limit", type=int, default=50, help="prompts per set for the LLM planner")
    parser.add_argument("--out", default="bench_results/planner.json")
    args = parser.parse_args(argv)

    sets = load_sets(Path(args.benchmarks))
    planners: list[tuple[str, Any, int, int | None]] = [("rule", RulePlanner(), args.runs, None)]
    planners.append(("bands (baseline)", BandsPlanner(), args.runs, None))
    if args.llm:
        from layout_model.llm import GenerationOptions, LLMPlanner

        for constrained in (True, False):
            llm = LLMPlanner.from_pretrained(args.llm, generation=GenerationOptions(constrained=constrained))
            planners.append((f"llm {'constrained' if constrained else 'free'}", llm, 1, args.llm_limit))

    rows: list[dict[str, Any]] = []
    for name, planner, runs, limit in planners:
        for set_name, items in sets.items():
            items = items[:limit] if limit else items
            fallback = None
            if name.startswith("llm"):
                outcomes_box: list[Any] = []

                def plan(prompt: str, seed: int, planner=planner, box=outcomes_box) -> Layout:
                    outcome = planner.plan_outcomes([prompt], width=SIZE, height=SIZE, seed=seed)[0]
                    box.append(outcome)
                    return outcome.layout

                layouts, times = _time_plans(plan, items, runs)
                with_model = [o for o in outcomes_box if o.report is not None]
                fallback = sum(not o.used_model for o in with_model) / max(1, len(with_model))
            else:
                layouts, times = _time_plans(
                    lambda prompt, seed, planner=planner: planner.plan(prompt, width=SIZE, height=SIZE, seed=seed),
                    items,
                    runs,
                )
            row = {"planner": name, "set": set_name, **measure(layouts, items, times), "fallback_rate": fallback}
            rows.append(row)

    rule_ms = statistics.median(r["plan_ms_median"] for r in rows if r["planner"] == "rule")
    for r in rows:
        r["time_vs_rule"] = r["plan_ms_median"] / rule_ms if rule_ms else None
    print_table(rows)
    result = {"size": SIZE, "benchmarks": str(args.benchmarks), "llm": args.llm, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
