"""The legibility study of textgen-tiny: named arms, each a small diff against today's recipe, trained from scratch
at a matched budget and evaluated the same way.

    python recipes/study.py base trial --steps 500 --batch 16        # train (resumable) + evaluate two arms
    python recipes/study.py --list                                   # the arms and what each changes
    python recipes/study.py --table                                  # the results table (markdown)

Every arm starts from ``recipes/tiny_stack.json`` and today's training flags (``BASE_TRAIN``), then applies its
own changes (``Arm.stack``, ``Arm.train``, data and glyph source, sampler); ``sampler`` re-evaluates ``base``'s
weights with another sampler. Data (made once, seeded, under ``--data``): the training set of today's recipe
(``textgen synth --mode simple``, seed 1000), the easy set (``--mode easy``, seed 2000), validation prompts (seed
777777) and the held-out set (seed 31337, as ``recipes/eval_tiny.sh``).

Each arm's ``result.json`` (under ``--runs/ARM_STEPSxBATCH``) holds: held-out Sentence Acc / NED on the product
path (prompt -> rule planner -> glyph -> model, as ``textgen generate``) and on the held-out samples' own layouts,
the glyph-blanked ablation (``--ablation``), median seconds per step on the device it trained on, trainable
parameters, and a 16-prompt sample grid (``grid.png``: glyph | image | glyph blanked).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from study_arms import ARMS, BASE_STACK, BASE_STACK_OVERRIDES, BASE_TRAIN, ROOT, SEEDS  # noqa: F401
from study_eval import GRID_PROMPTS, evaluate_arm, results_table, trainable_parameters  # noqa: F401


# ==================================================================================================== data
def _textgen(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "textgen.cli", *args], check=True, cwd=ROOT)


def make_data(
    data: Path, n_train: int, workers: int, n_heldout: int = 50, size: int = 128, heldout_only: bool = False
) -> dict[str, Path]:
    """Writes (once; reruns skip finished shards) every set the arms use; returns their paths.

    ``heldout_only``: just the held-out prompt sets (what evaluating a finished model needs).
    """
    sets = {
        "simple": (data / f"synth{size}", n_train, "simple", SEEDS["simple"], 1000),
        "easy": (data / f"easy{size}", n_train, "easy", SEEDS["easy"], 1000),
        "val": (data / f"synth{size}_val", 64, "simple", SEEDS["val"], 64),
        "heldout": (data / f"heldout{size}", 200, "simple", SEEDS["heldout"], 200),
    }
    if heldout_only:
        sets = {"heldout": sets["heldout"]}
    for folder, n, mode, seed, shard in sets.values():
        if len(list(folder.glob("*_stats.json"))) == -(-n // shard):
            continue  # complete (synth would skip every shard too, after a second of start-up)
        _textgen("synth", "-o", str(folder), "--n", str(n), "--size", str(size), "--seed", str(seed), "--mode", mode,
                 "--shard-size", str(shard), "--workers", str(workers))  # fmt: skip
    paths = {name: spec[0] for name, spec in sets.items()}
    planned, own = data / f"heldout{size}.jsonl", data / f"heldout{size}_layouts.jsonl"
    if not planned.is_file() or not own.is_file():
        write_prompt_sets(paths["heldout"], planned, own, n_heldout)
    paths["prompts"], paths["prompts_layouts"] = planned, own
    paths["cache"] = data / "decoded"
    return paths


def prepare_caches(paths: dict[str, Path], workers: int, stack: dict[str, Any] | None = None) -> None:
    """Decodes the training sets once for every glyph source into the in-memory cache the arms load."""
    from textgen.models import StackConfig, build_char_tokenizer
    from textgen.train_data import MemoryTriples

    base = {**json.loads(BASE_STACK.read_text()), **(stack or {})}
    tokenizer = build_char_tokenizer(base.get("max_text_length", StackConfig().max_text_length))
    from textgen.core.shards import shard_paths

    for name in ("simple", "easy"):
        for glyph in ("render", "mask"):
            t0 = time.perf_counter()
            MemoryTriples.build(shard_paths(paths[name]), resolution=base["resolution"], tokenizer=tokenizer,
                                glyph_source=glyph, workers=workers, cache=paths["cache"])  # fmt: skip
            print(f"decoded {name}/{glyph} in {time.perf_counter() - t0:.1f} s", flush=True)


def write_prompt_sets(shards: Path, planned: Path, own: Path, n: int) -> None:
    """The held-out prompt set twice: words only (the planner places them) and with the samples' own layouts."""
    sys.path.insert(0, str(ROOT / "recipes"))
    from heldout_prompts import prompt_entry

    from textgen.core.shards import iter_triples

    rows_planned, rows_own = [], []
    for triple in iter_triples(shards):
        record = triple.record.to_dict()
        entry = prompt_entry(record)
        rows_planned.append(entry)
        own_entry = {k: v for k, v in entry.items() if k != "texts"}
        layout = dict(record["layout"])
        layout["caption"] = entry["prompt"]
        rows_own.append({**own_entry, "layout": layout})
        if len(rows_planned) >= n:
            break
    planned.write_text("".join(json.dumps(r) + "\n" for r in rows_planned), encoding="utf-8")
    own.write_text("".join(json.dumps(r) + "\n" for r in rows_own), encoding="utf-8")


# =================================================================================================== train
def run_dir(runs: Path, arm: str, steps: int, batch: int) -> Path:
    return runs / f"{arm}_{steps}x{batch}"


def train_command(
    arm: str, steps: int, batch: int, paths: dict[str, Path], out: Path, device_opts: dict[str, Any]
) -> list[str]:
    """The ``textgen train-controlnet`` command line of an arm."""
    spec = ARMS[arm]
    base = {**json.loads(BASE_STACK.read_text()), **BASE_STACK_OVERRIDES}
    stack = {**base, **device_opts.get("stack", {}), **spec.stack}
    flags = {**BASE_TRAIN, **spec.train}
    if flags.get("ocr_loss_weight"):
        flags["recognizer"] = str(device_opts["recognizer"])
    cmd = [
        sys.executable, "-m", "textgen.cli", "train-controlnet",
        "--init_config", json.dumps(stack), "--train_unet", "--train_text_encoder", "--use_ema",
        "--train_batch_size", str(batch), "--max_train_steps", str(steps), "--output_dir", str(out),
        "--glyph_source", spec.glyph, "--in_memory", "--dataloader_num_workers", str(device_opts["workers"]),
        "--checkpointing_steps", str(max(100, steps // 4)), "--checkpoints_total_limit", "1",
        "--resume_from_checkpoint", "latest", "--validation_steps", "0", "--report_to", "none",
        "--save_dtype", "fp16", "--seed", "0", "--mixed_precision", device_opts["mixed_precision"],
        "--validation_inference_steps", str(spec.sampler[0]), "--validation_guidance_scale", str(spec.sampler[1]),
    ]  # fmt: skip
    if spec.data == "easy":
        cmd += ["--train_shards", str(paths["easy"])]
    else:
        cmd += ["--train_shards", str(paths["simple"])]
    if spec.data == "curriculum":
        cmd += ["--curriculum_shards", str(paths["easy"]), "--curriculum_steps", str(steps // 2)]
    cmd += ["--memory_cache", str(paths["cache"])]
    if device_opts.get("threads"):
        cmd += ["--num_threads", str(device_opts["threads"])]
    if device_opts.get("allow_tf32"):
        cmd += ["--allow_tf32"]
    if device_opts.get("max_train_seconds"):
        cmd += ["--max_train_seconds", str(device_opts["max_train_seconds"])]
    for key, value in flags.items():
        if value is not None:
            cmd += [f"--{key}", str(value)]
    return cmd


def step_seconds(run: Path, skip: int = 5) -> float | None:
    """Median seconds per optimizer step in the run's log (the first ``skip`` steps warm up)."""
    log = run / "train_log.jsonl"
    if not log.is_file():
        return None
    times = [json.loads(line)["step_seconds"] for line in log.read_text().splitlines() if line.strip()]
    times = times[skip:] or times
    return round(statistics.median(times), 4) if times else None


# ===================================================================================================== run
def run_arm(arm: str, args: argparse.Namespace, paths: dict[str, Path]) -> dict[str, Any]:
    """Trains (resumable) and evaluates one arm; returns and writes its ``result.json``."""
    spec = ARMS[arm]
    source = spec.weights_of or arm
    train_dir = run_dir(args.runs, source, args.steps, args.batch)
    if args.model is not None:  # evaluate a given pipeline folder with this arm's sampler, no training
        train_dir = args.model.parent
    device_opts = {
        "workers": args.workers,
        "mixed_precision": args.mixed_precision,
        "threads": args.threads,
        "recognizer": args.recognizer,
        "max_train_seconds": args.max_train_seconds,
        "allow_tf32": args.allow_tf32,
        "stack": json.loads(args.stack) if args.stack else {},
    }
    if args.model is None and (not (train_dir / "pipeline" / "model_index.json").is_file() or not args.skip_trained):
        if spec.weights_of and not (train_dir / "pipeline").is_dir():
            raise SystemExit(f"arm {arm} evaluates {spec.weights_of}'s weights: run {spec.weights_of} first")
        if not spec.weights_of:
            train_dir.mkdir(parents=True, exist_ok=True)
            if args.resume_from is not None:
                continue_run(args.resume_from, train_dir)
            cmd = train_command(arm, args.steps, args.batch, paths, train_dir, device_opts)
            with (train_dir / "train.out").open("a") as log:
                failed = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
            if failed:
                tail = (train_dir / "train.out").read_text(errors="replace").strip().splitlines()[-1:]
                reason = tail[0] if tail else f"exit status {failed}"
                out = run_dir(args.runs, arm, args.steps, args.batch)
                (out / "result.json").write_text(json.dumps({
                    "arm": arm, "description": spec.description, "steps": args.steps, "batch": args.batch,
                    "device": args.device, "failed": reason, "trained_steps": _last_step(train_dir),
                    "seconds_per_step": step_seconds(train_dir), "parameters": 0,
                }, indent=2) + "\n")  # fmt: skip
                raise SystemExit(f"arm {arm}: training failed: {reason}")
    out = run_dir(args.runs, arm, args.steps, args.batch)
    model = args.model or train_dir / "pipeline"
    result: dict[str, Any] = {
        "arm": arm,
        "description": spec.description,
        "spec": asdict(spec),
        "steps": args.steps,
        "batch": args.batch,
        "device": args.device,
        "seconds_per_step": step_seconds(train_dir),
        "parameters": trainable_parameters(model),
        "trained_steps": _last_step(train_dir),
    }
    out.mkdir(parents=True, exist_ok=True)

    def save(partial: dict[str, Any]) -> None:
        result.update(partial)
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")

    save({})
    if not args.skip_eval:
        evaluate_arm(arm, model, out, paths, args.eval_n, args.device, args.ablation, args.grid_n, on_result=save)
    return result


def continue_run(source: Path, target: Path) -> None:
    """Seeds ``target`` with ``source``'s latest checkpoint and log, so a longer budget continues that run.

    The in-memory data stream and the schedule (constant after warm-up) depend only on the step, so the longer
    run is the one that would have run uninterrupted.
    """
    import shutil

    if any(target.glob("checkpoint-*")):
        return  # already seeded (or resumed since)
    found = sorted(source.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not found:
        raise SystemExit(f"--resume-from {source}: no checkpoint-* folder there")
    shutil.copytree(found[-1], target / found[-1].name)
    if (source / "train_log.jsonl").is_file():
        shutil.copy2(source / "train_log.jsonl", target / "train_log.jsonl")


def _last_step(run: Path) -> int | None:
    log = run / "train_log.jsonl"
    if not log.is_file():
        return None
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1])["step"] if lines else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arms", nargs="*", help="arms to train and evaluate (see --list)")
    parser.add_argument("--list", action="store_true", help="print the arms and exit")
    parser.add_argument("--table", action="store_true", help="print the results table of --runs and exit")
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps per arm (500)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (16)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "study", help="datasets (made when missing)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "study", help="one folder per arm and budget")
    parser.add_argument("--n-train", type=int, default=30000, help="samples in each training set (30000)")
    parser.add_argument("--eval-n", type=int, default=50, help="held-out prompts evaluated (50)")
    parser.add_argument("--ablation", action="store_true", help="also evaluate with the glyph blanked")
    parser.add_argument("--grid-n", type=int, default=GRID_PROMPTS, help="prompts in the sample grid (16; 0: none)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads of training (CPU)")
    parser.add_argument("--workers", type=int, default=1, help="processes decoding data (1)")
    parser.add_argument("--recognizer", type=Path, default=None, help="recognizer folder for ocr_loss arms")
    parser.add_argument("--max-train-seconds", type=float, default=None, help="stop an arm's training early")
    parser.add_argument("--skip-trained", action="store_true", help="evaluate finished runs without resuming")
    parser.add_argument("--allow-tf32", action="store_true", help="TF32 matmuls on the GPU")
    parser.add_argument("--resume-from", type=Path, default=None, help="continue this run folder to --steps")
    parser.add_argument("--model", type=Path, default=None, help="evaluate this pipeline folder (no training)")
    parser.add_argument("--stack", default=None, help="JSON of StackConfig fields over tiny_stack.json (tests)")
    parser.add_argument("--size", type=int, default=128, help="image side of the datasets (128)")
    parser.add_argument("--skip-eval", action="store_true", help="train only")
    parser.add_argument("--prepare", action="store_true", help="make the datasets and decoded caches, then exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in ARMS.items():
            print(f"{name:24s} {spec.description}")
        return 0
    if args.table:
        print(results_table(args.runs))
        return 0
    if args.prepare:
        paths = make_data(args.data, args.n_train, args.workers, max(args.eval_n, GRID_PROMPTS), args.size)
        prepare_caches(paths, args.workers, json.loads(args.stack) if args.stack else None)
        return 0
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown or not args.arms:
        parser.error(f"unknown arm(s) {unknown}; choose from {list(ARMS)}" if unknown else "name at least one arm")
    if any(ARMS[a].train.get("ocr_loss_weight") for a in args.arms) and not args.recognizer:
        parser.error("ocr_loss arms need --recognizer FOLDER (textgen train-recognizer)")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    paths = make_data(
        args.data, args.n_train, args.workers, max(args.eval_n, GRID_PROMPTS), args.size, heldout_only=bool(args.model)
    )
    for arm in args.arms:
        result = run_arm(arm, args, paths)
        planned = result.get("planned", {})
        print(f"{arm}: Sentence Acc {planned.get('sentence_accuracy')} NED {planned.get('ned')} "
              f"({result['seconds_per_step']} s/step)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
