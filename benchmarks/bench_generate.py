"""End-to-end time of the README's main command: ``textgen generate 'A poster that says "OPEN"' -o out.png``.

Each run is a fresh process, as a user types it (Python start, imports, model load from the package folder,
planning, glyph, denoising, PNG). The baseline in the same run is the bare import of what any diffusers
program pays before it does anything (``import torch, diffusers`` and the ControlNet pipeline class), so the
table shows how much of the wall time is textgen's own work.

Usage: ``python benchmarks/bench_generate.py [--runs 5] [--threads 2] [--out bench_results/generate.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PROMPT = 'A poster that says "OPEN"'
BASELINE = "import torch, diffusers; from diffusers import StableDiffusionControlNetPipeline"


def _wall(cmd: Sequence[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Times ``--runs`` fresh ``textgen generate`` processes and the import baseline; prints a table, writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS (default: unset, torch's own)")
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--out", default="bench_results/generate.json")
    args = parser.parse_args(argv)

    textgen = shutil.which("textgen") or str(Path(sys.executable).parent / "textgen")
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    rows = {"import torch + diffusers (baseline)": [], "textgen generate": []}
    with tempfile.TemporaryDirectory() as tmp:  # a neutral working directory, as a user's would be
        cmd = [textgen, "generate", PROMPT, "-o", str(Path(tmp) / "out.png")]
        cmd += ["--model", args.model] if args.model else []
        cmd += ["--steps", str(args.steps)] if args.steps else []
        for _ in range(args.runs):  # interleaved, so drifting machine load hits both alike
            rows["import torch + diffusers (baseline)"].append(_wall([sys.executable, "-c", BASELINE], env, tmp))
            rows["textgen generate"].append(_wall(cmd, env, tmp))
    base = statistics.median(rows["import torch + diffusers (baseline)"])
    result = {
        "prompt": PROMPT,
        "runs": args.runs,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "rows": {
            name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "runs_s": t}
            for name, t in rows.items()
        },
    }
    print(f"{'':38s} {'median s':>9s} {'min':>7s} {'max':>7s} {'x baseline':>10s}")
    for name, t in rows.items():
        med = statistics.median(t)
        print(f"{name:38s} {med:9.2f} {min(t):7.2f} {max(t):7.2f} {med / base:10.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
