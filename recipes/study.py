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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASE_STACK = ROOT / "recipes" / "tiny_stack.json"
# Today's recipe (recipes/train_tiny.sh), from scratch.
BASE_TRAIN: dict[str, Any] = {
    "learning_rate": 1e-3,
    "lr_scheduler": "constant_with_warmup",
    "lr_warmup_steps": 100,
    "max_grad_norm": 1,
    "ema_decay": 0.999,
    "caption_dropout": 0.1,
    "text_loss_weight": 3,
    "timestep_sampling": "uniform",
}
WIDE = {"unet_channels": [64, 128, 256], "layers_per_block": 2, "attention_head_dim": 32}
SEEDS = {"simple": 1000, "easy": 2000, "val": 777777, "heldout": 31337}


@dataclass(frozen=True)
class Arm:
    """One arm of the study.

    Args:
        description: What it changes, in words.
        stack: ``StackConfig`` fields overriding ``recipes/tiny_stack.json``.
        train: Trainer flags overriding :data:`BASE_TRAIN` (``None`` removes a flag).
        data: ``simple`` (today's set), ``easy`` (large bold upper-case words) or ``curriculum`` (easy for the
            first half of the steps, then simple).
        glyph: ``render`` (the glyph drawn from each layout) or ``mask`` (the stored ink, aligned to the pixel).
        sampler: ``(steps, guidance)`` of the evaluation.
        weights_of: Evaluate this other arm's weights (no training of its own).
        extra_samplers: More ``(steps, guidance)`` to evaluate the same weights with on the planned prompts
            (reported as ``ARM@STEPSxGUIDANCE``).
    """

    description: str
    stack: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data: str = "simple"
    glyph: str = "render"
    sampler: tuple[int, float] = (10, 1.0)
    weights_of: str | None = None
    extra_samplers: tuple[tuple[int, float], ...] = ()


TRIAL = dict(stack={**WIDE, "controlnet": False}, train={"text_loss_weight": 0}, data="easy", glyph="mask")
ARMS: dict[str, Arm] = {
    "base": Arm("today's recipe: (48,96,192)x1 UNet + glyph input + ControlNet, simple set, rendered glyph, "
                "text weight 3, uniform t, 10 steps CFG 1", extra_samplers=((30, 2.0),)),
    "trial": Arm("FINDINGS' trial: (64,128,256)x2 UNet, glyph input, no ControlNet, easy set, glyph = the ink "
                 "drawn, plain loss, 30 steps CFG 2", sampler=(30, 2.0), **TRIAL),
    "trial_lr": Arm("the trial at half the learning rate (5e-4)", sampler=(30, 2.0), stack=TRIAL["stack"],
                    train={**TRIAL["train"], "learning_rate": 5e-4}, data="easy", glyph="mask"),
    "wide": Arm("base with the trial's UNet, (64,128,256) x 2 layers per block", stack=WIDE),
    "no_controlnet": Arm("base without the ControlNet (glyph input alone)", stack={"controlnet": False}),
    "easy": Arm("base on the easy set (1-3 bold upper-case words filling the width, plain backgrounds)",
                data="easy"),
    "aligned": Arm("base with the stored ink as the glyph (on the painted strokes, not 3-4 px inside)",
                   glyph="mask", extra_samplers=((30, 2.0),)),
    "no_text_weight": Arm("base with a plain MSE (no extra weight on the text cells)",
                          train={"text_loss_weight": 0}),
    "sampler": Arm("base's weights sampled with 30 DDIM steps, CFG 2", sampler=(30, 2.0), weights_of="base"),
    "mid_t": Arm("base with logit-normal timesteps (mid noise trained most)",
                 train={"timestep_sampling": "logit_normal"}),
    "curriculum": Arm("base trained on the easy set for the first half of the steps, then the simple set",
                      data="curriculum"),
    "ocr_loss": Arm("base + the text-perceptual loss (recognizer CTC on the predicted clean image, weight 0.05)",
                    train={"ocr_loss_weight": 0.05}),
    # once the glyph sits on the strokes (the change that matters most), each other change on top of it:
    # "anc" = aligned, no ControlNet (the cheaper of the two aligned models)
    "anc_easy": Arm("aligned_no_controlnet on the easy set", stack={"controlnet": False}, glyph="mask", data="easy"),
    "anc_no_text_weight": Arm("aligned_no_controlnet with a plain MSE", stack={"controlnet": False}, glyph="mask",
                              train={"text_loss_weight": 0}),
    "anc_mid_t": Arm("aligned_no_controlnet with logit-normal timesteps", stack={"controlnet": False}, glyph="mask",
                     train={"timestep_sampling": "logit_normal"}),
    "anc_ocr_loss": Arm("aligned_no_controlnet + the text-perceptual loss (weight 0.05)",
                        stack={"controlnet": False}, glyph="mask", train={"ocr_loss_weight": 0.05}),
    "anc_curriculum": Arm("aligned_no_controlnet, easy set for the first half, then the simple set",
                          stack={"controlnet": False}, glyph="mask", data="curriculum"),
    "anc_wide": Arm("aligned_no_controlnet with the (64,128,256)x2 UNet", stack={**WIDE, "controlnet": False},
                    glyph="mask"),
    # combinations where the single changes interact
    "aligned_no_controlnet": Arm("aligned + no ControlNet", stack={"controlnet": False}, glyph="mask",
                                 extra_samplers=((30, 2.0),)),
    "aligned_curriculum": Arm("aligned + curriculum", glyph="mask", data="curriculum"),
    "trial_simple": Arm("the trial's model and loss on today's simple set (aligned glyph), 30 steps CFG 2",
                        stack=TRIAL["stack"], train=TRIAL["train"], glyph="mask", sampler=(30, 2.0)),
    "trial_curriculum": Arm("the trial's model, easy then simple set, aligned glyph, 30 steps CFG 2",
                            stack=TRIAL["stack"], train=TRIAL["train"], glyph="mask", data="curriculum",
                            sampler=(30, 2.0)),
    "trial_curriculum_ocr": Arm("trial_curriculum + the text-perceptual loss (weight 0.05)",
                                stack=TRIAL["stack"], train={**TRIAL["train"], "ocr_loss_weight": 0.05},
                                glyph="mask", data="curriculum", sampler=(30, 2.0)),
}  # fmt: skip


# ==================================================================================================== data
def _textgen(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "textgen.cli", *args], check=True, cwd=ROOT)


def make_data(data: Path, n_train: int, workers: int, n_heldout: int = 50, size: int = 128) -> dict[str, Path]:
    """Writes (once; reruns skip finished shards) every set the arms use; returns their paths."""
    sets = {
        "simple": (data / f"synth{size}", n_train, "simple", SEEDS["simple"], 1000),
        "easy": (data / f"easy{size}", n_train, "easy", SEEDS["easy"], 1000),
        "val": (data / f"synth{size}_val", 64, "simple", SEEDS["val"], 64),
        "heldout": (data / f"heldout{size}", 200, "simple", SEEDS["heldout"], 200),
    }
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
    stack = {**json.loads(BASE_STACK.read_text()), **device_opts.get("stack", {}), **spec.stack}
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


# ==================================================================================================== eval
GRID_PROMPTS = 16


def evaluate_arm(
    arm: str, model: Path, out: Path, paths: dict[str, Path], n: int, device: str, ablation: bool,
    grid_n: int = GRID_PROMPTS, on_result: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Held-out scores of a saved pipeline with the arm's sampler; writes ``out/eval_*`` reports.

    ``on_result(results)`` is called after each evaluation (so a run stopped midway keeps what it measured).
    """
    from textgen.core.ocr import get_engine
    from textgen.evaluate import evaluate_prompts, load_prompts
    from textgen.pipeline import PosterPipeline

    steps, guidance = ARMS[arm].sampler
    engine = get_engine("rapidocr", threads=1)
    pipe = PosterPipeline.from_pretrained(model, local_files_only=True, device=device, ocr_engine=engine)
    results: dict[str, Any] = {}
    runs: dict[str, tuple[Path, dict[str, Any]]] = {"planned": (paths["prompts"], {})}
    for extra_steps, extra_guidance in ARMS[arm].extra_samplers:
        runs[f"planned@{extra_steps}x{extra_guidance:g}"] = (
            paths["prompts"], {"num_inference_steps": extra_steps, "guidance_scale": extra_guidance}
        )  # fmt: skip
    runs["own_layout"] = (paths["prompts_layouts"], {})
    if ablation:
        runs["glyph_blanked"] = (paths["prompts"], {"controlnet_conditioning_scale": 0.0})
    for name, (prompts, extra) in runs.items():
        t0 = time.perf_counter()
        report = evaluate_prompts(
            pipe,
            load_prompts(prompts)[:n],
            engine,
            out_dir=out / f"eval_{name}",
            seed=0,
            num_inference_steps=extra.pop("num_inference_steps", steps),
            pipeline_kwargs={"guidance_scale": guidance, "progress": False, **extra},
            meta={"arm": arm, "model": str(model)},
        )
        agg = report.aggregates
        results[name] = {
            "sentence_accuracy": agg["anytext"]["sentence_accuracy"],
            "ned": agg["anytext"]["ned"],
            "lines": agg["anytext"]["lines"],
            "text_color": agg["color"]["text_accuracy"],
            "background_color": agg["color"]["background_accuracy"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if on_result is not None:
            on_result(results)
    if grid_n:
        specs = load_prompts(paths["prompts"])[:grid_n]
        results["grid"] = str(sample_grid(pipe, specs, out / "grid.png", steps, guidance))
        if on_result is not None:
            on_result(results)
    return results


def sample_grid(pipe: Any, specs: Sequence[Any], path: Path, steps: int, guidance: float, cell: int = 128) -> Path:
    """Per prompt: glyph | image | image with the glyph blanked (seed = prompt index), in rows of four prompts."""
    from PIL import Image

    per_row = 4
    rows = (len(specs) + per_row - 1) // per_row
    grid = Image.new("RGB", (per_row * 3 * cell, rows * cell), "white")
    for i, spec in enumerate(specs):
        kwargs = dict(texts=list(spec.texts) if spec.texts else None, num_inference_steps=steps,
                      guidance_scale=guidance, progress=False)  # fmt: skip
        out = pipe(spec.prompt, seed=i, **kwargs)
        blank = pipe(spec.prompt, seed=i, controlnet_conditioning_scale=0.0, **kwargs)
        x, y = (i % per_row) * 3 * cell, (i // per_row) * cell
        for j, image in enumerate((out.glyph, out.images[0], blank.images[0])):
            grid.paste(image.convert("RGB").resize((cell, cell)), (x + j * cell, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def trainable_parameters(model: Path) -> int:
    """Parameters of the UNet, ControlNet and text encoder of a saved pipeline (from the safetensors headers)."""
    from safetensors import safe_open

    total = 0
    for name in ("unet", "controlnet", "text_encoder"):
        for file in sorted((model / name).glob("*.safetensors")) if (model / name).is_dir() else []:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is no dict)
                    total += _numel(f.get_slice(key).get_shape())
    return total


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


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


def results_table(runs: Path) -> str:
    """A markdown table of every ``result.json`` under ``runs``."""
    rows = []
    for path in sorted(runs.glob("*/result.json")):
        r = json.loads(path.read_text())
        if r.get("failed"):
            rows.append(f"| {r['arm']} | {r['steps']}x{r['batch']} | failed at step {r.get('trained_steps')}: "
                        f"{r['failed'][:80]} | | | | | | |")  # fmt: skip
            continue
        for key in [k for k in r if k.startswith("planned@")]:
            extra = {**r, "arm": f"{r['arm']} {key.split('@')[1]}", "planned": r[key], "own_layout": {}}
            extra.pop(key)
            rows.append(_row(extra))
        rows.append(_row(r))
    head = (
        "| arm | steps x batch | Sentence Acc (planned) | NED (planned) | Sentence Acc (own layout) "
        "| NED (own layout) | glyph blanked | s/step | parameters |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    return head + "\n" + "\n".join(rows)


def _cell(d: dict[str, Any], key: str) -> str:
    return f"{d[key]:.3f}" if key in d and d[key] is not None else "-"


def _row(r: dict[str, Any]) -> str:
    """One table row of a result."""
    planned, own, blank = r.get("planned", {}), r.get("own_layout", {}), r.get("glyph_blanked", {})
    sps = f"{r['seconds_per_step']:.3f}" if r.get("seconds_per_step") else "-"
    budget = f"{r['steps']}x{r['batch']}"
    if r.get("trained_steps") not in (None, r["steps"]):
        budget += f" (stopped at {r['trained_steps']})"
    cells = [
        r["arm"], budget, _cell(planned, "sentence_accuracy"), _cell(planned, "ned"),
        _cell(own, "sentence_accuracy"), _cell(own, "ned"), _cell(blank, "sentence_accuracy"), sps,
        f"{r['parameters'] / 1e6:.1f} M",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


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
    paths = make_data(args.data, args.n_train, args.workers, max(args.eval_n, GRID_PROMPTS), args.size)
    for arm in args.arms:
        result = run_arm(arm, args, paths)
        planned = result.get("planned", {})
        print(f"{arm}: Sentence Acc {planned.get('sentence_accuracy')} NED {planned.get('ned')} "
              f"({result['seconds_per_step']} s/step)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
