"""Evaluating text edits on synthetic posters with exact ground truth (``textgen evaluate --edit N``).

Each case is a held-out ``textgen synth`` poster (seed 31337, never trained on) whose first line gets another word
of the same kind. The edit is scored three ways:

* **edit Sentence Accuracy / NED**: OCR reads the new text in its box (AnyText's per-line protocol);
* **residue**: OCR still reads the old text there (a remnant of what should be gone);
* **preservation**: the share of pixels outside the mask that are unchanged (must be 1.0), and the PSNR of a
  ring of pixels just outside the mask against the original (how cleanly the edit meets its surroundings
  is judged inside; the ring must be untouched, so its PSNR is infinite when preservation holds).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

WORDS = ("SALE", "OPEN", "CAFE", "STOP", "JAZZ", "FRESH", "PIZZA", "MUSIC", "PARTY", "HOTEL", "BAKERY", "SUMMER")


def edit_cases(n: int, seed: int = 31337, size: int = 128) -> list[dict[str, Any]]:
    """``n`` synthetic edit cases: the poster, the box of its first line, the old and the new text."""
    from data_prep.synth import SynthOptions, make_sample

    cases = []
    index = 0
    while len(cases) < n:
        sample = make_sample(seed, 10_000 + index, SynthOptions(size=size, mode="simple", rotation_prob=0.0))
        index += 1
        box = sample.record.layout.boxes[0]
        old = box.text
        new = WORDS[len(cases) % len(WORDS)]
        if new.lower() == old.lower() or not old.isascii():
            new = WORDS[(len(cases) + 1) % len(WORDS)]
        cases.append({"name": sample.record.key, "image": sample.image, "box": box.box, "old": old, "new": new,
                      "caption": sample.record.caption})  # fmt: skip
    return cases


HEIGHT_BINS = (0, 16, 20, 24, 28, 32, 40, 56, 1000)  # the bins of recipes/height_curve.py, to compare with generation


def by_height(rows: list[dict[str, Any]], edges: tuple[float, ...] = HEIGHT_BINS) -> list[dict[str, Any]]:
    """Edit Sentence Accuracy per box-height bin (pixels), for the bins that hold cases."""
    out = []
    for lo, hi in zip(edges, edges[1:]):
        inside = [r for r in rows if lo <= r["box_height_px"] < hi]
        if inside:
            accuracy = round(sum(r["exact"] for r in inside) / len(inside), 3)
            out.append({"from_px": lo, "to_px": hi, "cases": len(inside), "edit_sentence_accuracy": accuracy})
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) if a.size else 0.0
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def evaluate_edits(
    pipe: Any, engine: Any, n: int, out_dir: str | Path, seed: int = 0, method: str = "auto"
) -> dict[str, Any]:
    """Edits ``n`` cases with ``pipe`` and scores them (see the module docstring); writes ``report.json``.

    ``method`` is :func:`textgen.edit.edit_image`'s (the one used is recorded in the summary).
    """
    from textgen.core.layout import Layout, TextBox
    from textgen.core.metrics import ned
    from textgen.edit import edit_image, edit_route
    from textgen.eval_read import read_boxes

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, case in enumerate(edit_cases(n)):
        image = case["image"]
        layout = Layout(image.width, image.height, (TextBox(case["new"], case["box"]),))
        t0 = time.perf_counter()
        result = edit_image(pipe, image, layout, seed=seed + i, method=method)
        edited = result.image
        mask = np.asarray(result.mask) > 0
        ring = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(9))) > 0
        ring &= ~mask
        before, after = np.asarray(image), np.asarray(edited)
        read = read_boxes(edited, result.layout, engine)[0]
        rows.append({
            "name": case["name"], "old": case["old"], "new": case["new"], "read": read,
            "exact": read == case["new"], "ned": ned(read, case["new"]),
            "residue": case["old"].lower() in read.lower() and case["old"].lower() != case["new"].lower(),
            "unchanged_outside": float(np.mean(np.all(before[~mask] == after[~mask], axis=-1))) if (~mask).any()
            else 1.0,
            "ring_psnr": _psnr(before[ring], after[ring]), "seconds": round(time.perf_counter() - t0, 3),
            "unet_evaluations": result.evaluations,
            "box_height_px": round((case["box"][3] - case["box"][1]) * image.height, 1),
        })  # fmt: skip
        Image.fromarray(np.concatenate([before, after], axis=1)).save(out / "images" / f"{i:03d}.png")
    n_rows = max(1, len(rows))
    summary = {
        "cases": len(rows),
        "method": edit_route(pipe, method),
        "edit_sentence_accuracy": sum(r["exact"] for r in rows) / n_rows,
        "edit_ned": sum(r["ned"] for r in rows) / n_rows,
        "residue_rate": sum(r["residue"] for r in rows) / n_rows,
        "unchanged_outside": min((r["unchanged_outside"] for r in rows), default=1.0),
        "ring_psnr_min": min((r["ring_psnr"] for r in rows), default=math.inf),
        "seconds_per_edit": sum(r["seconds"] for r in rows) / n_rows,
    }
    summary["by_box_height"] = by_height(rows)
    report = {"summary": summary, "cases": rows}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report
