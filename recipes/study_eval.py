"""The legibility study's evaluation and its results table (used by ``recipes/study.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study_arms import ARMS

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
