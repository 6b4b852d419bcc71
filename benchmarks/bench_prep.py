"""Throughput of the whole prep job against the bare OCR engine on the same images, at equal worker counts.

Modes, each timed from a cold start (worker processes spawned, OCR engines loaded) to the last result:

* ``bare OCR``: the engine alone -- ``Image.open`` + ``engine.read`` for every image, in this process for one
  worker, on a ``multiprocessing`` spawn pool for more (one engine per process, images split evenly);
* ``prep local``: ``run_prep`` with the local runner (read, decode/validate, OCR, filters, captions, write
  shards, stats and rejected list);
* ``prep ray``: ``run_prep`` on Ray Data; Ray is started once before timing (a cluster exists before a job
  runs) and its start-up time is reported on its own.

Cold-start overhead = prep seconds / bare seconds - 1 at the same worker count, in wall time and in CPU time (this
process and its reaped worker processes, ``getrusage``; Ray's workers are not our children, so Ray has wall time
only). On a machine shared with other jobs CPU time is the steadier measure: wall time also counts the time
other processes held the cores. Both include fixed costs (spawning workers, imports, planning, merging) that a
job of millions of images pays once, so the table also shows the steady-state overhead measured inside each
local prep job, where outside load hits both sides alike: the seconds its workers spent on their shards (read,
decode, OCR, filters, captions, write) over the seconds spent in ``engine.read``, minus 1. The images are read from
``../shared/benchmarks`` through a JSONL list (nothing is copied); outputs go to a temporary folder. Runs are
interleaved (bare, prep, bare, prep...) so that load from other processes hits both alike; the table shows
medians.

Usage: ``python benchmarks/bench_prep.py [--benchmarks ../shared/benchmarks] [--n-images 24] [--runs 3]
[--workers 1 2] [--ray-workers 2] [--out bench_results/prep.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_GROUPS = ("ocr/images/icdar2015_mmocr", "ocr/images/icdar2015_test")


# ---------------------------------------------------------------------------------------------- bare OCR
_ENGINE: Any = None


def _init_engine(engine: str) -> None:
    global _ENGINE
    from textgen.core.ocr import get_engine

    _ENGINE = get_engine(engine, languages=("en",), threads=1)


def _read_paths(paths: list[str]) -> int:
    from PIL import Image

    boxes = 0
    for path in paths:
        with Image.open(path) as image:
            boxes += len(_ENGINE.read(image))
    return boxes


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished (reaped) child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare_ocr(paths: list[str], workers: int, engine: str) -> None:
    """The bare engine reads ``paths`` with ``workers`` processes (engine loading included)."""
    global _ENGINE
    if workers == 1:
        _init_engine(engine)
        _read_paths(paths)
        _ENGINE = None
        return
    chunks = [paths[i::workers] for i in range(workers)]
    pool = get_context("spawn").Pool(workers, initializer=_init_engine, initargs=(engine,))
    pool.map(_read_paths, chunks, chunksize=1)
    pool.close()
    pool.join()


# -------------------------------------------------------------------------------------------------- prep
def steady_overhead(out: Path) -> float:
    """Seconds spent on the shards / seconds spent in the OCR engine - 1, from the job's stats files."""
    stats = [json.loads(p.read_text()) for p in out.glob("*_stats.json")]
    shard_seconds = sum(s["seconds"] for s in stats)
    ocr_seconds = sum(s["stage_seconds"].get("ocr", 0.0) for s in stats)
    return shard_seconds / ocr_seconds - 1.0


def prep(list_file: Path, out: Path, runner: str, workers: int, engine: str, shard_size: int) -> dict[str, Any]:
    """Runs the prep job on the listed images; returns its summary."""
    from data_prep.runners import PrepConfig, run_prep

    shutil.rmtree(out, ignore_errors=True)
    config = PrepConfig(
        input=str(list_file),
        output=str(out),
        shard_size=shard_size,
        engine=engine,
        runner=runner,
        workers=workers,
        progress=False,
    )
    return run_prep(config)


# -------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmarks", default=str(REPO_ROOT.parent / "shared" / "benchmarks"))
    parser.add_argument("--n-images", type=int, default=24, help="images per run (default 24)")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode; the table shows medians (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local worker counts (default 1 2)")
    parser.add_argument("--ray-workers", type=int, nargs="*", default=[2], help="Ray OCR actors (default 2; none)")
    parser.add_argument("--engine", default="default", help="OCR engine (default: the project default)")
    parser.add_argument("--shards", type=int, default=4, help="output shards per job (default 4)")
    parser.add_argument("--out", default="bench_results/prep.json", help="JSON output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(args.benchmarks)
    images = sorted(str(p) for group in IMAGE_GROUPS for p in (root / group).glob("*.jpg"))
    if not images:
        raise SystemExit(f"no benchmark images under {root}/{{{','.join(IMAGE_GROUPS)}}}")
    images = images[: args.n_images]
    n = len(images)
    shard_size = max(1, -(-n // args.shards))
    work = Path(tempfile.mkdtemp(prefix="bench_prep_"))
    list_file = work / "images.jsonl"
    list_file.write_text("".join(json.dumps({"path": p}) + "\n" for p in images))

    modes: list[tuple[str, str, int]] = [("bare OCR", "-", w) for w in args.workers]
    modes += [("prep", "local", w) for w in args.workers]
    ray_init_seconds = None
    if args.ray_workers:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, _temp_dir=str(work / "r"))
        ray_init_seconds = time.perf_counter() - t0
        modes += [("bare OCR", "-", w) for w in args.ray_workers if w not in args.workers]
        modes += [("prep", "ray", w) for w in args.ray_workers]

    # Warm-up: module imports and first-engine costs are paid here, not by whichever in-process mode runs first.
    import data_prep.runners  # noqa: F401

    _init_engine(args.engine)
    globals()["_ENGINE"] = None

    times: dict[tuple[str, str, int], list[float]] = {m: [] for m in modes}
    cpu: dict[tuple[str, str, int], list[float]] = {m: [] for m in modes}
    steady: dict[tuple[str, str, int], list[float]] = {m: [] for m in modes}
    last: dict[tuple[str, str, int], dict[str, Any]] = {}
    try:
        for run in range(args.runs):
            for mode in modes:  # interleaved, so that outside load hits every mode alike
                kind, runner, workers = mode
                t0, c0 = time.perf_counter(), cpu_seconds()
                if kind == "bare OCR":
                    bare_ocr(images, workers, args.engine)
                else:
                    summary = prep(list_file, work / "out", runner, workers, args.engine, shard_size)
                    last[mode] = summary
                    assert summary["inputs"] == n == summary["written"] + summary["rejected_total"]
                    if runner == "local":  # Ray's driver sees shards arrive, not the time spent on them
                        steady[mode].append(steady_overhead(work / "out"))
                times[mode].append(time.perf_counter() - t0)
                cpu[mode].append(cpu_seconds() - c0)
                print(
                    f"run {run + 1}/{args.runs}: {kind:8s} {runner:5s} x{workers}: {times[mode][-1]:7.2f} s wall, "
                    f"{cpu[mode][-1]:7.2f} s CPU",
                    flush=True,
                )
    finally:
        if args.ray_workers:
            import ray

            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    for mode in modes:
        kind, runner, workers = mode
        median = statistics.median(times[mode])
        bare = statistics.median(times[("bare OCR", "-", workers)])
        median_cpu = statistics.median(cpu[mode])
        bare_cpu = statistics.median(cpu[("bare OCR", "-", workers)])
        has_cpu = runner != "ray"  # Ray's worker processes are not ours to account
        row = {
            "mode": kind,
            "runner": runner,
            "workers": workers,
            "seconds": [round(t, 3) for t in times[mode]],
            "median_seconds": round(median, 3),
            "images_per_second": round(n / median, 3),
            "overhead_vs_bare": None if kind == "bare OCR" else round(median / bare - 1.0, 4),
            "cpu_seconds": [round(t, 3) for t in cpu[mode]] if has_cpu else None,
            "median_cpu_seconds": round(median_cpu, 3) if has_cpu else None,
            "cpu_overhead_vs_bare": round(median_cpu / bare_cpu - 1.0, 4) if has_cpu and kind != "bare OCR" else None,
            "steady_overhead": [round(x, 4) for x in steady[mode]] or None,
            "median_steady_overhead": round(statistics.median(steady[mode]), 4) if steady[mode] else None,
        }
        if mode in last:
            stage = last[mode]["stage_seconds"]
            row["stage_seconds_last_run"] = stage
            row["written"], row["rejected"] = last[mode]["written"], last[mode]["rejected"]
        rows.append(row)

    print(f"\n{n} images (ICDAR-2015, 1280x720), engine {args.engine}, median of {args.runs} run(s)")
    print(
        f"{'mode':10s} {'runner':6s} {'workers':>7s} {'wall s':>8s} {'img/s':>7s} {'overhead':>9s} "
        f"{'CPU s':>8s} {'CPU overhead':>12s} {'steady-state':>12s}"
    )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:+.1f}%"

    for r in rows:
        cpu_s = "-" if r["median_cpu_seconds"] is None else f"{r['median_cpu_seconds']:.2f}"
        print(
            f"{r['mode']:10s} {r['runner']:6s} {r['workers']:>7d} {r['median_seconds']:>8.2f} "
            f"{r['images_per_second']:>7.2f} {pct(r['overhead_vs_bare']):>9s} {cpu_s:>8s} "
            f"{pct(r['cpu_overhead_vs_bare']):>12s} {pct(r['median_steady_overhead']):>12s}"
        )
    if ray_init_seconds is not None:
        print(f"(ray.init before timing: {ray_init_seconds:.1f} s)")
    result = {
        "images": n,
        "image_groups": list(IMAGE_GROUPS),
        "engine": args.engine,
        "runs": args.runs,
        "shard_size": shard_size,
        "ray_init_seconds": None if ray_init_seconds is None else round(ray_init_seconds, 3),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
