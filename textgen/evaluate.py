"""Legibility evaluation the way the papers measure it: OCR the generated images, score them, write a report.

Given images and what they should say (a :class:`textgen.core.layout.Layout`, or just the texts), every image is read
twice with an OCR engine from :mod:`textgen.core.ocr`:

1. **per box** -- each layout box is cropped (with a small margin) and read alone: AnyText's Sentence Accuracy
   and NED per text line (:func:`read_boxes`);
2. **whole image** -- all detections in reading order: GlyphControl's Acc, case-insensitive Acc and LD, and
   TextDiffuser's word precision / recall / F-measure and accuracy.

Optionally a CLIP score of image and prompt (:class:`ClipScorer`, a local CLIP model) and a colour check (is the
text, and is the background, nearest to the colour the prompt names?). The metric definitions live in
:mod:`textgen.core.metrics`; ``docs/evaluation.md`` compares them with the papers' scripts.

Entry points: :func:`evaluate_images` (images in memory), :func:`evaluate_folder` (a folder with a ``<name>.json``
beside each image or a ``manifest.jsonl``), :func:`evaluate_prompts` (runs a prompt set through a pipeline), and
``textgen evaluate`` on the command line. Each returns an :class:`EvalReport`, which
:meth:`EvalReport.save` writes as ``report.json`` and ``report.html`` (an image grid with per-image scores).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from textgen.core.layout import Layout
from textgen.core.metrics import (
    ned,
)
from textgen.eval_inputs import (  # noqa: F401  (textgen.evaluate is the evaluation's public face)
    EvalSample,
    PromptSpec,
    _as_texts,
    _inside,
    load_folder,
    load_prompts,
    sample_from_entry,
)
from textgen.eval_read import (  # noqa: F401
    CROP_CANVASES,
    IMAGE_SUFFIXES,
    MANIFEST_NAME,
    THUMBNAIL_SIDE,
    ClipScorer,
    EvalOptions,
    _read_many,
    _to_rgb,
    crop_box,
    read_boxes,
)
from textgen.eval_report import EvalReport, ImageResult, _thumbnail, aggregate, render_html, score_sample  # noqa: F401
from textgen.pipeline_config import EDIT_METHODS

__all__ = [
    "ClipScorer",
    "EvalOptions",
    "EvalReport",
    "EvalSample",
    "ImageResult",
    "PromptSpec",
    "crop_box",
    "evaluate_folder",
    "evaluate_images",
    "evaluate_prompts",
    "evaluate_samples",
    "load_folder",
    "load_prompts",
    "ned",
    "read_boxes",
]


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate_samples(
    samples: Iterable[EvalSample],
    engine: Any,
    *,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    progress: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> EvalReport:
    """Scores samples one by one.

    An image that cannot be read (missing, corrupt) or that fails in OCR does not stop the run: its result
    carries the reason in ``error`` and it is left out of the aggregates (counted as ``failed``).

    Args:
        samples: The samples (an iterator is consumed lazily, so a large folder never sits in memory).
        engine: OCR engine (``read(image) -> [OCRBox]``).
        options: :class:`EvalOptions`.
        clip: Optional CLIP scorer (``clip(images, texts) -> scores``, e.g. :class:`ClipScorer`).
        progress: Show a progress bar.
        meta: Recorded in the report.

    Returns:
        The :class:`EvalReport`.
    """
    opts = options or EvalOptions()
    opts.palette_colors()  # a bad palette fails before any OCR time is spent
    iterator: Iterable[EvalSample] = samples
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(samples, desc="evaluate", unit="img")
    results = []
    for sample in iterator:
        try:
            results.append(score_sample(sample, engine, opts, clip))
        except Exception as err:  # recorded, not raised: one bad image must not end a long run
            results.append(
                ImageResult(
                    name=sample.name,
                    texts=list(sample.texts),
                    path=str(sample.path) if sample.path is not None else None,
                    prompt=sample.prompt,
                    error=f"{type(err).__name__}: {err}",
                )
            )
    return EvalReport(results=results, engine=_engine_name(engine), options=opts, meta=dict(meta or {}))


def _engine_name(engine: Any) -> str:
    return str(getattr(engine, "name", type(engine).__name__))


def evaluate_images(
    images: Sequence[Image.Image],
    layouts_or_texts: Sequence[Layout | Sequence[str] | str],
    engine: Any,
    *,
    names: Sequence[str] | None = None,
    prompts: Sequence[str | None] | None = None,
    text_colors: Sequence[str | None] | None = None,
    background_colors: Sequence[str | list[str] | None] | None = None,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
) -> EvalReport:
    """Evaluates images in memory against their layouts (or bare texts).

    Args:
        images: The generated images.
        layouts_or_texts: Per image, a :class:`Layout` (all metrics) or the intended texts (a list, or one
            string; whole-image metrics only).
        engine: OCR engine, e.g. ``textgen.core.ocr.get_engine("rapidocr")``.
        names: Names for the report (default ``0000``, ``0001``...).
        prompts: Prompts (for the CLIP score and the report).
        text_colors: Intended text colour per image (for boxes whose layout names none).
        background_colors: Intended background colour(s) per image.
        options: :class:`EvalOptions`.
        clip: Optional CLIP scorer.

    Raises:
        ValueError: lists of different lengths, or an image without any intended text.
    """
    n = len(images)
    for label, values in (
        ("layouts_or_texts", layouts_or_texts),
        ("names", names),
        ("prompts", prompts),
        ("text_colors", text_colors),
        ("background_colors", background_colors),
    ):
        if values is not None and len(values) != n:
            raise ValueError(f"evaluate_images: {len(values)} {label} for {n} images")
    samples = []
    for i, (image, target) in enumerate(zip(images, layouts_or_texts)):
        name = names[i] if names is not None else f"{i:04d}"
        entry: dict[str, Any] = {
            "prompt": prompts[i] if prompts is not None else None,
            "text_color": text_colors[i] if text_colors is not None else None,
            "background_color": background_colors[i] if background_colors is not None else None,
        }
        if isinstance(target, Layout):
            entry["layout"] = target.to_dict()
            entry["prompt"] = entry["prompt"] or target.caption
        else:
            entry["texts"] = target
        sample = sample_from_entry(entry, where=f"image {i} ({name})", name=name)
        sample.image = image
        samples.append(sample)
    return evaluate_samples(samples, engine, options=options, clip=clip)


def evaluate_folder(
    folder: str | Path,
    engine: Any,
    *,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    progress: bool = False,
) -> EvalReport:
    """Evaluates a folder of images (see :func:`load_folder` for how it says what each image should show)."""
    samples = load_folder(folder)
    return evaluate_samples(
        samples, engine, options=options, clip=clip, progress=progress, meta={"folder": str(Path(folder))}
    )


def evaluate_prompts(
    pipeline: Callable[..., Any],
    prompts: str | Path | Sequence[PromptSpec | str],
    engine: Any,
    *,
    out_dir: str | Path,
    num_images_per_prompt: int = 1,
    seed: int = 0,
    num_inference_steps: int | None = None,
    best_of: int = 1,
    pipeline_kwargs: Mapping[str, Any] | None = None,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    progress: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> EvalReport:
    """Runs a prompt set through a pipeline, saves the images, evaluates them and writes the report.

    The pipeline is any callable ``pipeline(prompt, num_images_per_prompt=..., seed=..., [texts=..., layout=...,
    num_inference_steps=..., best_of=...]) -> out`` whose ``out`` has ``.images`` (PIL images), ``.layout`` (the
    :class:`Layout` painted) and ``.glyph`` (the glyph image), as :class:`textgen.pipeline.PosterPipeline` does.
    Optional arguments are passed only when set, so simple callables work.

    ``out_dir`` receives ``images/`` (every image, its glyph and a ``manifest.jsonl`` that :func:`evaluate_folder`
    reads again, e.g. with another OCR engine) and the report (:meth:`EvalReport.save`).

    Args:
        pipeline: The generator.
        prompts: A prompt file (:func:`load_prompts`) or a list of :class:`PromptSpec` / prompt strings.
        engine: OCR engine.
        out_dir: Output folder.
        num_images_per_prompt: Images kept per prompt.
        seed: Base seed: prompt ``i`` uses ``seed + i`` unless its spec sets one.
        num_inference_steps: Denoising steps (the pipeline's default when ``None``).
        best_of: OCR-verified best-of-N inside the pipeline (only the ``num_images_per_prompt`` best are kept).
        pipeline_kwargs: More keyword arguments for every call (``guidance_scale``,
            ``controlnet_conditioning_scale=0`` for a no-glyph ablation...).
        options: :class:`EvalOptions`.
        clip: Optional CLIP scorer.
        progress: Show a progress bar over prompts.
        meta: Recorded in the report (model name...).

    Returns:
        The :class:`EvalReport` (also written to ``out_dir``).

    Raises:
        ValueError: bad counts, or a pipeline output without ``images``/``layout``.
    """
    if num_images_per_prompt < 1 or best_of < 1:
        raise ValueError(f"num_images_per_prompt and best_of must be >= 1, got {num_images_per_prompt}, {best_of}")
    specs = (
        load_prompts(prompts)
        if isinstance(prompts, (str, Path))
        else [p if isinstance(p, PromptSpec) else PromptSpec(prompt=str(p)) for p in prompts]
    )
    if not specs:
        raise ValueError("evaluate_prompts: no prompts")
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    opts = options or EvalOptions()
    opts.palette_colors()

    def generate() -> Iterator[EvalSample]:
        manifest = (image_dir / MANIFEST_NAME).open("w", encoding="utf-8")
        try:
            for i, spec in enumerate(specs):
                stem = spec.name or f"{i:04d}"
                call: dict[str, Any] = {
                    "num_images_per_prompt": num_images_per_prompt,
                    "seed": spec.seed if spec.seed is not None else seed + i,
                }
                if spec.texts is not None:
                    call["texts"] = list(spec.texts)
                if spec.layout is not None:
                    call["layout"] = spec.layout
                if num_inference_steps is not None:
                    call["num_inference_steps"] = num_inference_steps
                if best_of > 1:
                    call["best_of"] = best_of
                result = pipeline(spec.prompt, **{**dict(pipeline_kwargs or {}), **call})
                images = list(getattr(result, "images", None) or [])[:num_images_per_prompt]
                layout = getattr(result, "layout", None)
                if not images or not isinstance(layout, Layout):
                    raise ValueError(
                        f"prompt {i} ({spec.prompt!r}): the pipeline returned no images or no layout (expected an "
                        "object with .images, .layout and .glyph)"
                    )
                glyph = getattr(result, "glyph", None)
                glyph_name = None
                if glyph is not None:
                    glyph_name = f"{stem}_glyph.png"
                    glyph.save(image_dir / glyph_name)
                for k, image in enumerate(images):
                    name = f"{stem}_{k}.png"
                    image.save(image_dir / name)
                    entry = {
                        "image": name,
                        "prompt": spec.prompt,
                        "seed": call["seed"],
                        "index": k,
                        "layout": layout.to_dict(),
                        "glyph": glyph_name,
                        "text_color": spec.text_color,
                        "background_color": list(spec.background_color)
                        if isinstance(spec.background_color, tuple)
                        else spec.background_color,
                    }
                    manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    manifest.flush()
                    sample = sample_from_entry(entry, where=f"prompt {i} image {k}", name=name, path=image_dir / name)
                    sample.image, sample.glyph = image, glyph
                    yield sample
        finally:
            manifest.close()

    if progress:
        print(f"generating and evaluating {len(specs)} prompts x {num_images_per_prompt} images")
    run_meta = {
        "prompts": len(specs),
        "num_images_per_prompt": num_images_per_prompt,
        "seed": seed,
        "num_inference_steps": num_inference_steps,
        "best_of": best_of,
        "pipeline_kwargs": {
            k: v if isinstance(v, (int, float, str, bool)) else repr(v) for k, v in (pipeline_kwargs or {}).items()
        },
        **dict(meta or {}),
    }
    report = evaluate_samples(generate(), engine, options=opts, clip=clip, progress=progress, meta=run_meta)
    report.save(out)
    return report


# ------------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from textgen.core.cliargs import float_in, int_in

    parser.add_argument(
        "images", nargs="?", help="folder of images with <name>.json layouts beside them or a manifest.jsonl"
    )
    parser.add_argument("-o", "--output", required=True, help="report folder (report.json, report.html, thumbs/)")
    parser.add_argument("--engine", default="default", choices=["default", "rapidocr", "easyocr"], help="OCR engine")
    parser.add_argument("--languages", nargs="+", default=["en"], help="OCR languages (en, zh)")
    parser.add_argument(
        "--threads",
        "--ocr-threads",
        dest="threads",
        type=int_in(1, 256),
        default=1,
        help="OCR threads (1 is robust when shared; prep spells it --ocr-threads)",
    )
    parser.add_argument("--clip-model", help="local CLIP model folder: adds a CLIP score of image and prompt")
    parser.add_argument(
        "--palette", choices=["synth", "basic"], default="synth", help="named colours for the colour check"
    )
    gen = parser.add_argument_group("generate from prompts (instead of a folder)")
    gen.add_argument("--prompts", help="prompt file: .txt (one per line) or .jsonl ({'prompt', 'texts', ...})")
    gen.add_argument("--model", help="preset, saved PosterPipeline folder or SD base (default: the shipped model)")
    gen.add_argument("--controlnet", help="ControlNet folder or hub id, for an SD base")
    gen.add_argument("--n", "--num-images", dest="n", type=int_in(1, 64), default=1, help="images per prompt")
    gen.add_argument("--steps", type=int_in(1, 1000), help="denoising steps, 1-1000 (default: the model's)")
    gen.add_argument("--best-of", type=int_in(1, 64), default=1, help="OCR-verified best-of-N inside the pipeline")
    gen.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="base seed; prompt i uses seed + i")
    gen.add_argument("--guidance", type=float_in(0, 100), help="classifier-free guidance, 0-100 (default: model)")
    gen.add_argument(
        "--control-scale", type=float_in(0, 10), help="glyph conditioning scale, 0-10 (0 blanks the glyph: ablation)"
    )
    gen.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    gen.add_argument("--local-files-only", action="store_true", help="never touch the network")
    gen.add_argument(
        "--edit", type=int_in(1, 10000), metavar="N",
        help="edit mode: N held-out synthetic posters get a new word in their first line (edit accuracy, residue, "
        "preservation)",
    )  # fmt: skip
    gen.add_argument("--edit-method", choices=EDIT_METHODS, default="auto",
                     help="with --edit: native (the model repaints the hole; a model trained to edit), blend (any "
                     "model) or auto")  # fmt: skip


def _load_pipeline(args: argparse.Namespace, engine: Any = None) -> Any:
    import torch

    from textgen.pipeline import PosterPipeline

    model = args.model
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return PosterPipeline.from_pretrained(
        model,
        args.controlnet,
        local_files_only=args.local_files_only,
        device=device,
        ocr_engine=engine,  # best-of-N ranks with the evaluator's own engine: one OCR model in memory
    )


def run(args: argparse.Namespace) -> int:
    if args.edit:
        return _run_edit(args)
    if bool(args.images) == bool(args.prompts):
        raise ValueError("give either an IMAGES folder or --prompts FILE (with --model), not both or neither")
    if args.images and not Path(args.images).is_dir():
        raise FileNotFoundError(f"{args.images}: no such folder of images to evaluate")
    options = EvalOptions(palette=args.palette)
    # Check the cheap inputs before loading OCR, CLIP or diffusion models.
    prompts = load_prompts(args.prompts) if args.prompts else None
    samples = load_folder(args.images) if args.images else None
    from textgen.core.ocr import get_engine

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    engine = get_engine(args.engine, languages=args.languages, threads=args.threads)
    clip = ClipScorer(args.clip_model) if args.clip_model else None
    if prompts is not None:
        pipeline = _load_pipeline(args, engine)
        kwargs: dict[str, Any] = {"progress": False}
        if args.guidance is not None:
            kwargs["guidance_scale"] = args.guidance
        if args.control_scale is not None:
            kwargs["controlnet_conditioning_scale"] = args.control_scale
        report = evaluate_prompts(
            pipeline,
            prompts,
            engine,
            out_dir=args.output,
            num_images_per_prompt=args.n,
            seed=args.seed,
            num_inference_steps=args.steps,
            best_of=args.best_of,
            pipeline_kwargs=kwargs,
            options=options,
            clip=clip,
            progress=True,
            meta={"model": str(args.model or "shipped"), "prompts_file": str(args.prompts)},
        )
    else:
        report = evaluate_samples(
            samples, engine, options=options, clip=clip, progress=True, meta={"folder": str(args.images)}
        )
        report.save(args.output)
    print(report.summary())
    print(f"wrote {Path(args.output) / 'report.json'} and {Path(args.output) / 'report.html'}")
    agg = report.aggregates["images"]
    if agg["evaluated"] == 0:
        first = next((r.error for r in report.results if r.error), "")
        raise RuntimeError(f"no image could be evaluated ({agg['failed']} failed; first: {first})")
    return 0


def _run_edit(args: argparse.Namespace) -> int:
    """``textgen evaluate --edit N``: the edit mode (:mod:`textgen.eval_edit`)."""
    from textgen.core.ocr import get_engine
    from textgen.eval_edit import evaluate_edits

    if args.images or args.prompts:
        raise ValueError("--edit makes its own cases: give no IMAGES folder and no --prompts")
    engine = get_engine(args.engine, languages=args.languages, threads=args.threads)
    pipe = _load_pipeline(args, engine)
    report = evaluate_edits(pipe, engine, args.edit, args.output, seed=args.seed, method=args.edit_method)
    s = report["summary"]
    print(
        f"{s['cases']} edits: Sentence Acc {s['edit_sentence_accuracy']:.3f}, NED {s['edit_ned']:.3f}, residue "
        f"{s['residue_rate']:.3f}, pixels unchanged outside the mask {s['unchanged_outside']:.3f}"
    )
    print(f"wrote {Path(args.output) / 'report.json'}")
    return 0
