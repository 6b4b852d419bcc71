"""The word recognizer (textgen.recognizer) against the OCR engine: accuracy on real word crops, and as a best-of-N
scorer (does it pick the candidate RapidOCR would, and how much cheaper is it).

    python benchmarks/bench_recognizer.py --recognizer textgen/weights/recognizer \\
        --benchmarks ../shared/benchmarks [--model textgen/weights/textgen-tiny --prompts P.jsonl --n 20]

1. **Real crops**: the sharp, human-annotated English lines of ``ocr_gt.jsonl`` (ICDAR-2015 train images,
   Total-Text, WildReceipt, the mmocr word crops; the motion-blurred ICDAR-2015 test copies and ignore regions
   left out; only texts the recognizer's charset can spell), read by the recognizer and by RapidOCR from the same
   axis-aligned crops: word accuracy (exact, case-sensitive) and NED.
2. **Best-of-N** (with ``--model``): for each prompt, ``--best-of`` candidates are generated; the recognizer and
   RapidOCR each score every candidate (mean NED over the boxes, as ``PosterPipeline.score``). Reported: how often
   both pick the same best candidate (ties: any of the tied), the rank correlation of the scores, and the median
   seconds per candidate of each scorer.

Prints a table and writes JSON (``--output``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SHARP_GROUPS = ("icdar2015_mmocr", "totaltext", "wildreceipt_mmocr", "wordcrops_mmocr")


def real_crops(benchmarks: Path) -> list[tuple[Any, tuple[float, float, float, float], str, str]]:
    """``(image, box, text, group)`` of every sharp, readable English line (see the module docstring)."""
    from PIL import Image

    from textgen.recognizer import encode_text

    out = []
    for line in (benchmarks / "ocr_gt.jsonl").read_text().splitlines():
        entry = json.loads(line)
        group = next((g for g in SHARP_GROUPS if f"/{g}/" in entry["image"]), None)
        if group is None or entry.get("lang") != "en":
            continue
        image = Image.open(benchmarks / entry["image"]).convert("RGB")
        for item in entry["lines"]:
            if item.get("ignore") or encode_text(item["text"]) is None:
                continue
            if item.get("box") is None:
                box = (0.0, 0.0, float(image.width), float(image.height))
            else:
                xs, ys = [p[0] for p in item["box"]], [p[1] for p in item["box"]]
                box = (min(xs), min(ys), max(xs), max(ys))
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            out.append((image, box, item["text"].strip(), group))
    return out


def read_with_recognizer(model, crops) -> tuple[list[str], float]:
    """Reads each crop (the box cut out first and scaled to 32 px high, as the recognizer's crops are)."""
    import numpy as np
    import torch

    from textgen.recognizer import crop_lines, decode_greedy

    reads, seconds = [], []
    with torch.no_grad():
        for image, box, _, _ in crops:
            t0 = time.perf_counter()
            pad = 0.15 * (box[3] - box[1])
            cut = image.crop((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
            scale = 48 / max(1, cut.height)
            cut = cut.resize((max(1, round(cut.width * scale)), 48))
            x = torch.from_numpy(np.asarray(cut, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
            p = pad * scale
            row = torch.tensor([[0.0, p, p, x.shape[-1] - p, x.shape[-2] - p]])
            reads.append(decode_greedy(model(crop_lines(x, row)))[0])
            seconds.append(time.perf_counter() - t0)
    return reads, statistics.median(seconds)


def read_with_engine(engine, crops) -> tuple[list[str], float]:
    """Reads each box the way ``textgen evaluate`` does (:func:`textgen.evaluate.read_boxes`: padded crop)."""
    from textgen.core.layout import Layout, TextBox
    from textgen.evaluate import read_boxes

    reads, seconds = [], []
    for image, box, text, _ in crops:
        w, h = image.size
        norm = (box[0] / w, box[1] / h, min(1.0, box[2] / w), min(1.0, box[3] / h))
        layout = Layout(w, h, (TextBox(text, tuple(max(0.0, v) for v in norm)),))
        t0 = time.perf_counter()
        reads.append(read_boxes(image, layout, engine)[0])
        seconds.append(time.perf_counter() - t0)
    return reads, statistics.median(seconds)


def accuracy(reads: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    from textgen.core.metrics import ned

    n = max(1, len(targets))
    return {
        "word_accuracy": round(sum(r == t for r, t in zip(reads, targets)) / n, 4),
        "ned": round(sum(ned(r, t) for r, t in zip(reads, targets)) / n, 4),
        "lines": len(targets),
    }


def best_of_n(model_dir: str, prompts: str, n: int, best_of: int, scorer, engine) -> dict[str, Any]:
    """Agreement of the recognizer's and RapidOCR's choices among generated candidates."""
    from textgen.evaluate import load_prompts
    from textgen.pipeline import PosterPipeline

    pipe = PosterPipeline.from_pretrained(model_dir, local_files_only=True, ocr_engine=engine)
    same, rank_corr, t_rec, t_ocr, gain = 0, [], [], [], []
    specs = load_prompts(prompts)[:n]
    for i, spec in enumerate(specs):
        out = pipe(spec.prompt, texts=list(spec.texts) if spec.texts else None, num_images_per_prompt=best_of,
                   seed=i, progress=False)  # fmt: skip
        t0 = time.perf_counter()
        rec_scores, _ = scorer(out.images, out.layout)
        t_rec.append((time.perf_counter() - t0) / len(out.images))
        t0 = time.perf_counter()
        ocr_scores, _ = pipe.score(out.images, out.layout)
        t_ocr.append((time.perf_counter() - t0) / len(out.images))
        pick = max(range(len(rec_scores)), key=lambda k: rec_scores[k])
        same += ocr_scores[pick] == max(ocr_scores)
        gain.append(ocr_scores[pick] - statistics.mean(ocr_scores))
        rank_corr.append(_spearman(rec_scores, ocr_scores))
    corr = [c for c in rank_corr if c is not None]
    return {
        "prompts": len(specs),
        "candidates": best_of,
        "same_best": round(same / max(1, len(specs)), 3),
        "ocr_gain_of_recognizer_pick": round(statistics.mean(gain), 4) if gain else None,
        "spearman_mean": round(statistics.mean(corr), 3) if corr else None,
        "seconds_per_candidate_recognizer": round(statistics.median(t_rec), 5),
        "seconds_per_candidate_ocr": round(statistics.median(t_ocr), 4),
    }


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    if len(set(ra)) < 2 or len(set(rb)) < 2:
        return None
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recognizer", required=True, help="recognizer folder")
    parser.add_argument("--benchmarks", type=Path, required=True, help="../shared/benchmarks")
    parser.add_argument("--model", default=None, help="pipeline folder for the best-of-N part")
    parser.add_argument("--prompts", default=None, help="prompt set (.jsonl) for the best-of-N part")
    parser.add_argument("--n", type=int, default=20, help="prompts in the best-of-N part")
    parser.add_argument("--best-of", type=int, default=4)
    parser.add_argument("--output", type=Path, default=Path("bench_results/recognizer.json"))
    args = parser.parse_args(argv)

    import torch

    from textgen.core.ocr import get_engine
    from textgen.recognizer import RecognizerScorer, WordRecognizer

    torch.set_num_threads(1)
    model = WordRecognizer.from_pretrained(args.recognizer)
    engine = get_engine("rapidocr", threads=1)
    crops = real_crops(args.benchmarks)
    targets = [c[2] for c in crops]
    rec_reads, rec_s = read_with_recognizer(model, crops)
    ocr_reads, ocr_s = read_with_engine(engine, crops)
    real = {
        "recognizer": {**accuracy(rec_reads, targets), "seconds": rec_s},
        "rapidocr": {**accuracy(ocr_reads, targets), "seconds": ocr_s},
    }
    result: dict[str, Any] = {"real_crops": real}
    by_group = {}
    for group in SHARP_GROUPS:
        idx = [i for i, c in enumerate(crops) if c[3] == group]
        by_group[group] = {
            "recognizer": accuracy([rec_reads[i] for i in idx], [targets[i] for i in idx]),
            "rapidocr": accuracy([ocr_reads[i] for i in idx], [targets[i] for i in idx]),
        }
    result["real_crops_by_group"] = by_group
    report_path = Path(args.recognizer) / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        result["synthetic_heldout"] = {k: report[k] for k in ("heldout_clean", "heldout_degraded") if k in report}
    if args.model and args.prompts:
        result["best_of_n"] = best_of_n(
            args.model, args.prompts, args.n, args.best_of, RecognizerScorer(model), engine
        )

    print("| reader | lines | word accuracy | NED | s per crop |\n|---|---:|---:|---:|---:|")
    for name in ("recognizer", "rapidocr"):
        r = result["real_crops"][name]
        print(f"| {name} (real sharp crops) | {r['lines']} | {r['word_accuracy']:.3f} | {r['ned']:.3f} "
              f"| {r['seconds']:.4f} |")  # fmt: skip
    for name, r in result.get("synthetic_heldout", {}).items():
        print(f"| recognizer (synthetic {name.split('_')[1]}) | {r['lines']} | {r['word_accuracy']:.3f} "
              f"| {r['ned']:.3f} | |")  # fmt: skip
    if "best_of_n" in result:
        b = result["best_of_n"]
        print(f"\nbest-of-{b['candidates']} over {b['prompts']} prompts: same pick as RapidOCR {b['same_best']:.2f}, "
              f"Spearman {b['spearman_mean']}, OCR gain of the recognizer's pick over the mean "
              f"{b['ocr_gain_of_recognizer_pick']}, s/candidate {b['seconds_per_candidate_recognizer']} (recognizer) "
              f"vs {b['seconds_per_candidate_ocr']} (RapidOCR)")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
