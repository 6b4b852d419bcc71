"""OCR quality and speed per engine: word recall / precision / F on real scene text and on synthetic posters.

Groups:

* ``icdar2015_test``: the 60 ICDAR-2015 test images of ``../shared/benchmarks/ocr_gt.jsonl`` (human word GT).
  The copies in that corpus come from a blurred-text-detector repository and 59 of 60 are motion-blurred
  (median variance of the Laplacian 20, against 89 for the ICDAR-2015 train images of the same corpus): no
  engine reads them; the printed sharpness line shows it;
* ``icdar2015_train10``: ICDAR-2015 train images 1-10 (sharp, human GT; possibly seen by the engines in training);
* ``totaltext``: 3 Total-Text images (shop signs, curved text, human GT);
* ``synth_poster_256``: synthetic posters from :mod:`data_prep.synth` (1-4 lines, 256x256), exact word GT;
* ``synth_simple_128``: the project's training distribution (1-3 large words, 128x128), exact word GT.

Scoring (end-to-end, word level): every detection is split into words (:func:`textgen.core.ocr.split_words`,
a no-op for engines that already report words), detections that overlap an ``ignore`` region with IoU >= 0.5
are dropped, and the rest are matched one-to-one, greedily by polygon IoU, to ground-truth words with IoU >=
0.5 and the same text compared case-insensitively. ``F@.3`` relaxes the IoU to 0.3 (detectors pad their boxes;
the synthetic ground truth is the exact ink); ``det F`` uses IoU >= 0.5 alone (detection quality). Each engine
runs in its own process (clean peak memory, ``--threads`` intra-op threads); seconds per image are the median
over the images of a group after one warm-up image, and ``x rapidocr`` is the ratio to the first engine's time
in the same run.

Usage: ``python benchmarks/bench_ocr.py [--engines rapidocr easyocr rapidocr-words] [--groups ...] [--threads 1]
[--synthetic-n 50] [--max-images N] [--out bench_results/ocr.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_GROUPS = {  # group name -> image folder in ocr_gt.jsonl (human ground truth)
    "icdar2015_test": "ocr/images/icdar2015_test",
    "icdar2015_train10": "ocr/images/icdar2015_mmocr",
    "totaltext": "ocr/images/totaltext",
}
SYNTH_GROUPS = {  # group name -> generator options
    "synth_poster_256": {"size": 256, "mode": "poster", "seed": 2024},
    "synth_simple_128": {"size": 128, "mode": "simple", "seed": 2025},
}
# engine label -> (get_engine name, engine kwargs)
ENGINE_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "rapidocr": ("rapidocr", {}),
    "easyocr": ("easyocr", {}),
    "rapidocr-words": ("rapidocr", {"word_boxes": True}),
}


@dataclass(frozen=True)
class Word:
    text: str
    polygon: tuple[tuple[float, float], ...]
    ignore: bool = False


# ------------------------------------------------------------------------------------------------- scoring
def polygon_iou(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    """IoU of two polygons (their convex hulls: ICDAR quads and detector quads are convex)."""
    import cv2

    pa = cv2.convexHull(np.asarray(a, dtype=np.float32).reshape(-1, 1, 2))
    pb = cv2.convexHull(np.asarray(b, dtype=np.float32).reshape(-1, 1, 2))
    area_a, area_b = float(cv2.contourArea(pa)), float(cv2.contourArea(pb))
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    inter = max(0.0, float(inter))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _aabb_overlap(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> bool:
    ax, ay = [p[0] for p in a], [p[1] for p in a]
    bx, by = [p[0] for p in b], [p[1] for p in b]
    return min(ax) < max(bx) and min(bx) < max(ax) and min(ay) < max(by) and min(by) < max(ay)


def _norm(text: str) -> str:
    return text.strip().casefold()


def score_image(detections: Sequence[Word], truth: Sequence[Word], iou_threshold: float = 0.5) -> dict[str, int]:
    """Counts matches of one image.

    Returns:
        ``gt`` (care words), ``det`` (detections left after dropping those on ignore regions), ``tp``
        (IoU and text match), ``det_tp`` (IoU match alone) and ``tp_loose`` (text match at 0.6 x the IoU
        threshold: detectors pad their boxes, and the synthetic ground truth is the exact ink), each one-to-one.
    """
    loose = iou_threshold * 0.6
    care = [t for t in truth if not t.ignore]
    ignore = [t for t in truth if t.ignore]
    kept = [
        d
        for d in detections
        if not any(
            _aabb_overlap(d.polygon, g.polygon) and polygon_iou(d.polygon, g.polygon) >= iou_threshold for g in ignore
        )
    ]
    pairs = []
    for i, d in enumerate(kept):
        for j, g in enumerate(care):
            if _aabb_overlap(d.polygon, g.polygon):
                iou = polygon_iou(d.polygon, g.polygon)
                if iou >= loose:
                    pairs.append((iou, i, j, _norm(d.text) == _norm(g.text)))
    pairs.sort(key=lambda p: -p[0])

    def greedy(candidates: list[tuple[float, int, int, bool]]) -> int:
        used_d, used_g, n = set(), set(), 0
        for _, i, j, _same in candidates:
            if i not in used_d and j not in used_g:
                used_d.add(i)
                used_g.add(j)
                n += 1
        return n

    loose = iou_threshold * 0.6  # 0.3 for the default 0.5
    return {
        "gt": len(care),
        "det": len(kept),
        "tp": greedy([p for p in pairs if p[3] and p[0] >= iou_threshold]),
        "det_tp": greedy([p for p in pairs if p[0] >= iou_threshold]),
        "tp_loose": greedy([p for p in pairs if p[3]]),
    }


def prf(tp: int, n_det: int, n_gt: int) -> tuple[float, float, float]:
    recall = tp / n_gt if n_gt else 0.0
    precision = tp / n_det if n_det else 0.0
    f = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return recall, precision, f


# ------------------------------------------------------------------------------------------------- inputs
def load_real(bench_dir: Path, groups: Sequence[str], max_images: int | None) -> list[dict[str, Any]]:
    """Entries of ``ocr_gt.jsonl`` in the given groups as ``{"group", "id", "path", "truth"}``."""
    gt_path = bench_dir / "ocr_gt.jsonl"
    if not gt_path.is_file():
        raise FileNotFoundError(f"{gt_path}: no such file (pass --benchmarks <folder with ocr_gt.jsonl>)")
    folders = {REAL_GROUPS[g] + "/": g for g in groups}
    items: dict[str, list[dict[str, Any]]] = {g: [] for g in groups}
    with gt_path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            entry = json.loads(line)
            group = next((g for prefix, g in folders.items() if entry["image"].startswith(prefix)), None)
            if group is None:
                continue
            truth = []
            for k, ln in enumerate(entry["lines"]):
                if ln.get("box") is None:
                    raise ValueError(f"{gt_path}:{lineno}: line {k} of {entry['image']} has no polygon")
                truth.append(Word(ln["text"], tuple(tuple(map(float, p)) for p in ln["box"]), bool(ln["ignore"])))
            items[group].append(
                {"group": group, "id": entry["image"], "path": str(bench_dir / entry["image"]), "truth": truth}
            )
    for group, found in items.items():
        if not found:
            raise ValueError(f"{gt_path}: no entries under {REAL_GROUPS[group]}")
    return [item for found in items.values() for item in (found[:max_images] if max_images else found)]


def sharpness(path: str) -> float:
    """Variance of the Laplacian of the grey image: under ~50 the text of a 1280x720 photo is blurred away."""
    import cv2

    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()) if grey is not None else float("nan")


def synth_items(n: int) -> list[dict[str, Any]]:
    """Synthetic inputs, described by generator parameters (each worker regenerates them, byte-identical)."""
    from data_prep.synth import SynthOptions, make_sample

    items = []
    for group, cfg in SYNTH_GROUPS.items():
        opts = SynthOptions(size=cfg["size"], mode=cfg["mode"])
        for index in range(n):
            sample = make_sample(cfg["seed"], index, opts)
            truth = [Word(w["text"], tuple(tuple(p) for p in w["polygon"])) for w in sample.words]
            items.append(
                {"group": group, "id": f"{group}/{index}", "synth": (cfg["seed"], index, cfg), "truth": truth}
            )
    return items


def _load_image(item: dict[str, Any]):
    from PIL import Image

    if "path" in item:
        with Image.open(item["path"]) as im:
            return im.convert("RGB")
    from data_prep.synth import SynthOptions, make_sample

    seed, index, cfg = item["synth"]
    return make_sample(seed, index, SynthOptions(size=cfg["size"], mode=cfg["mode"])).image


# ------------------------------------------------------------------------------------------------- worker
def _run_engine(label: str, threads: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs in a fresh process: loads one engine, reads every image, returns detections and timings."""
    import resource

    from textgen.core.ocr import get_engine, split_words

    name, kwargs = ENGINE_SPECS[label]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    engine = get_engine(name, languages=("en",), threads=threads, **kwargs)
    load_s = time.perf_counter() - t0
    engine.read(_load_image(items[0]))  # warm-up: first-call allocations are not per-image cost
    results = []
    for item in items:
        image = _load_image(item)
        t = time.perf_counter()
        boxes = engine.read(image)
        seconds = time.perf_counter() - t
        words = [w for b in boxes for w in split_words(b)]
        results.append(
            {
                "group": item["group"],
                "id": item["id"],
                "seconds": seconds,
                "words": [(w.text, [list(p) for p in w.polygon]) for w in words],
            }
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"label": label, "load_s": load_s, "rss_before_mb": rss_before, "peak_rss_mb": peak, "results": results}


# --------------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default=str(REPO_ROOT / ".." / "shared" / "benchmarks"),
                        help="folder with ocr_gt.jsonl (default ../shared/benchmarks beside the repo)")  # fmt: skip
    parser.add_argument("--engines", nargs="+", default=list(ENGINE_SPECS), choices=list(ENGINE_SPECS))
    parser.add_argument("--groups", nargs="*", default=list(REAL_GROUPS), choices=list(REAL_GROUPS),
                        help="real-image groups of ocr_gt.jsonl")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per engine (default 1)")
    parser.add_argument("--synthetic-n", type=int, default=50, help="synthetic images per synthetic group")
    parser.add_argument("--max-images", type=int, help="only the first N images of each real group (quick runs)")
    parser.add_argument("--out", default="bench_results/ocr.json")
    args = parser.parse_args(argv)

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # inherited by the workers
        os.environ[var] = str(args.threads)
    real = load_real(Path(args.benchmarks), args.groups, args.max_images) if args.groups else []
    items = real + synth_items(args.synthetic_n)
    groups = list(dict.fromkeys(item["group"] for item in items))
    truth = {item["id"]: item["truth"] for item in items}
    sharp = {g: statistics.median(sharpness(i["path"]) for i in real if i["group"] == g) for g in args.groups}

    runs = {}
    for label in args.engines:  # one at a time: engines never compete for the cores
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            runs[label] = pool.submit(_run_engine, label, args.threads, items).result()
        print(f"{label}: done in {sum(r['seconds'] for r in runs[label]['results']):.0f} s of reading", flush=True)

    rows = []
    for label, run in runs.items():
        for group in groups:
            counts = {"gt": 0, "det": 0, "tp": 0, "det_tp": 0, "tp_loose": 0}
            seconds = []
            for res in run["results"]:
                if res["group"] != group:
                    continue
                dets = [Word(text, tuple(tuple(p) for p in poly)) for text, poly in res["words"]]
                for key, value in score_image(dets, truth[res["id"]]).items():
                    counts[key] += value
                seconds.append(res["seconds"])
            r, p, f = prf(counts["tp"], counts["det"], counts["gt"])
            rows.append(
                {
                    "engine": label,
                    "group": group,
                    "images": len(seconds),
                    **counts,
                    "recall": r,
                    "precision": p,
                    "f": f,
                    "det_f": prf(counts["det_tp"], counts["det"], counts["gt"])[2],
                    "f_loose": prf(counts["tp_loose"], counts["det"], counts["gt"])[2],
                    "s_per_image": statistics.median(seconds),
                    "load_s": run["load_s"],
                    "peak_rss_mb": run["peak_rss_mb"],
                }
            )
    baseline = {row["group"]: row["s_per_image"] for row in rows if row["engine"] == args.engines[0]}
    for row in rows:
        row["time_vs_first"] = row["s_per_image"] / baseline[row["group"]] if baseline[row["group"]] else None

    header = (
        f"{'engine':<15} | {'group':<17} | {'imgs':>4} | {'R':>5} | {'P':>5} | {'F':>5} | {'F@.3':>5} | "
        f"{'det F':>5} | {'s/img':>5} | {'x ' + args.engines[0]:>10} | {'load s':>6} | {'peak MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['engine']:<15} | {row['group']:<17} | {row['images']:>4} | {row['recall']:5.3f} | "
            f"{row['precision']:5.3f} | {row['f']:5.3f} | {row['f_loose']:5.3f} | {row['det_f']:5.3f} | "
            f"{row['s_per_image']:5.2f} | {row['time_vs_first']:9.2f}x | {row['load_s']:6.1f} | "
            f"{row['peak_rss_mb']:7.0f}"
        )
    for group, value in sharp.items():
        print(f"sharpness of {group} (median variance of the Laplacian): {value:.0f}")
    result = {
        "benchmark": "ocr_quality",
        "threads": args.threads,
        "iou_threshold": 0.5,
        "synthetic_n": args.synthetic_n,
        "sharpness": sharp,
        "rows": rows,
        "detections": {label: run["results"] for label, run in runs.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
