"""Legibility against text height: Sentence Accuracy and NED per box height, from ``textgen evaluate`` reports.

    python recipes/height_curve.py runs/eval/planned:data/heldout128.jsonl \\
        runs/eval/own_layout:data/heldout128_layouts.jsonl [--model MODEL] [--threshold 0.5] [--json out.json]

Each argument is ``REPORT_DIR:PROMPTS`` (the evaluation's folder and the prompt set it ran): a prompt's box
comes from its ``layout`` when the set gives one, else from the rule planner run again exactly as the pipeline
ran it (seed 0, the model's resolution, the model's planner options). Lines are binned by box height in pixels; the
smallest legible height is the lowest bin edge from which every bin (with at least ``--min-lines`` lines) reads at
``--threshold`` Sentence Accuracy or better: the value a model declares as ``min_text_height``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EDGES = (0, 12, 16, 20, 24, 28, 32, 40, 56, 1000)


def line_heights(report_dir: Path, prompts: Path, model: Path | None) -> list[tuple[float, bool, float]]:
    """``(box height px, exact, ned)`` for every line of a report (the planner as ``model`` configures it)."""
    from layout_model.rule import RuleOptions, RulePlanner
    from textgen.evaluate import load_prompts
    from textgen.pipeline_config import CONFIG_NAME, PipelineConfig, rule_options

    report = json.loads((report_dir / "report.json").read_text())
    specs = load_prompts(prompts)
    config = Path(model) / CONFIG_NAME if model else None
    options = rule_options(PipelineConfig.load(config)) if config and config.is_file() else RuleOptions()
    planner = RulePlanner(options)
    out = []
    for i, image in enumerate(report["images"]):
        if image.get("error") or not image.get("lines"):
            continue
        spec = specs[i]
        w, h = image["size"]
        layout = spec.layout.resized(w, h) if spec.layout is not None else planner.plan(
            spec.prompt, texts=list(spec.texts) if spec.texts else None, width=w, height=h, seed=0
        )  # fmt: skip
        if [b.text for b in layout.boxes] != [line["target"] for line in image["lines"]]:
            raise ValueError(f"{report_dir}: image {i} ({image['name']}): the re-planned layout's texts differ "
                             "from the report's: wrong prompt set or planner options?")  # fmt: skip
        for box, line in zip(layout.boxes, image["lines"]):
            out.append(((box.box[3] - box.box[1]) * h, bool(line["exact"]), float(line["ned"])))
    return out


def curve(lines: Sequence[tuple[float, bool, float]], edges: Sequence[float] = EDGES) -> list[dict[str, Any]]:
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        inside = [line for line in lines if lo <= line[0] < hi]
        if not inside:
            continue
        rows.append({
            "from_px": lo, "to_px": hi, "lines": len(inside),
            "sentence_accuracy": round(sum(x[1] for x in inside) / len(inside), 3),
            "ned": round(sum(x[2] for x in inside) / len(inside), 3),
        })  # fmt: skip
    return rows


def smallest_legible(rows: Sequence[dict[str, Any]], threshold: float, min_lines: int) -> float | None:
    """The lowest bin edge from which every populated bin reads at ``threshold`` or better."""
    counted = [r for r in rows if r["lines"] >= min_lines]
    for i, row in enumerate(counted):
        if all(r["sentence_accuracy"] >= threshold for r in counted[i:]):
            return float(row["from_px"])
    return None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="REPORT_DIR:PROMPTS pairs")
    parser.add_argument("--model", type=Path, default=None, help="the model folder evaluated (its planner options)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--min-lines", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    lines = []
    for item in args.reports:
        report, _, prompts = item.partition(":")
        if not prompts:
            parser.error(f"{item}: expected REPORT_DIR:PROMPTS")
        lines += line_heights(Path(report), Path(prompts), args.model)
    rows = curve(lines)
    legible = smallest_legible(rows, args.threshold, args.min_lines)
    print("| box height (px) | lines | Sentence Acc | NED |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['from_px']}-{r['to_px']} | {r['lines']} | {r['sentence_accuracy']:.3f} | {r['ned']:.3f} |")
    print(f"\nsmallest legible height (Sentence Acc >= {args.threshold} from there up): {legible} px")
    result = {"rows": rows, "smallest_legible_px": legible, "threshold": args.threshold, "lines": len(lines)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
