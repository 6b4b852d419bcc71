"""Summarises a ``textgen train-controlnet`` run as a markdown table: loss per window of steps, wall time, and the
validation OCR scores logged at the same steps (for the model card).

Usage: python recipes/training_curve.py RUN_DIR [--window 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a ``.jsonl`` file (an empty list when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def curve_table(log: list[dict], validation: list[dict], window: int) -> str:
    """Markdown table: one row per ``window`` steps (median loss, cumulative hours), with the last validation in it."""
    scores = {v["step"]: v for v in validation}
    rows = [
        "| steps | median loss | hours (cumulative) | validation Sentence Acc | validation NED |",
        "|---|---:|---:|---:|---:|",
    ]
    by_window: dict[int, list[dict]] = {}
    for entry in log:
        by_window.setdefault((entry["step"] - 1) // window, []).append(entry)
    for index in sorted(by_window):
        entries = by_window[index]
        last = max(e["step"] for e in entries)
        loss = statistics.median(e["loss"] for e in entries)
        hours = max(e["seconds"] for e in entries) / 3600
        inside = [step for step in scores if index * window < step <= last]
        check = scores[max(inside)] if inside else None
        acc = f"{check['sentence_accuracy']:.2f}" if check else ""
        ned = f"{check['ned']:.2f}" if check else ""
        rows.append(f"| {index * window + 1}-{last} | {loss:.4f} | {hours:.2f} | {acc} | {ned} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the training run's --output_dir")
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args(argv)
    run = Path(args.run)
    log = read_jsonl(run / "train_log.jsonl")
    if not log:
        raise SystemExit(f"{run}: no train_log.jsonl")
    # a resumed run re-logs the steps after its checkpoint: keep the last record of each step
    latest = {e["step"]: e for e in log}
    print(
        curve_table([latest[s] for s in sorted(latest)], read_jsonl(run / "validation" / "scores.jsonl"), args.window)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
