"""``textgen generate``: prompt in, poster out (the command-line face of :class:`textgen.pipeline.PosterPipeline`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from textgen.core.cliargs import CommandError, float_in, int_in, parse_size

# the ranges of textgen.pipeline (MAX_STEPS, ...), repeated here so parsing the command line imports no torch
_STEPS, _GUIDANCE, _CONTROL, _IMAGES = int_in(1, 1000), float_in(0.0, 100.0), float_in(0.0, 10.0), int_in(1, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="what to paint; quoted words are rendered, e.g. 'A poster that says \"OPEN\"'")
    parser.add_argument("-o", "--output", required=True, help="output image (.png); with several images, NAME_k.png")
    parser.add_argument(
        "--model",
        default=None,
        help="a preset (sd15-canny, sd15-glyph), a saved PosterPipeline folder, or a diffusers SD base "
        "(then --controlnet is needed); default: the model shipped with textgen",
    )
    parser.add_argument("--controlnet", help="diffusers ControlNet folder or hub id")
    parser.add_argument("--control", choices=["glyph", "canny"], help="control mode (default: the model's)")
    parser.add_argument("--planner", help="'rule' or an LLM planner folder (default: the model's)")
    parser.add_argument("--layout", help="layout JSON to paint instead of planning one")
    parser.add_argument("--texts", nargs="+", help="words to paint, overriding the quotes in the prompt")
    parser.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0)
    parser.add_argument("--steps", type=_STEPS, help="denoising steps, 1-1000 (default: the model's)")
    parser.add_argument("--guidance", type=_GUIDANCE, help="classifier-free guidance, 0-100 (default: the model's)")
    parser.add_argument("--control-scale", type=_CONTROL, default=1.0, help="glyph conditioning scale, 0-10 (1)")
    parser.add_argument("--best-of", type=_IMAGES, default=1, help="generate N candidates, keep the best by OCR")
    parser.add_argument("--num-images", "--n", dest="num_images", type=_IMAGES, default=1, help="images to keep")
    parser.add_argument("--size", type=parse_size, help="WxH (default: the model's)")
    parser.add_argument("--negative-prompt")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=None, help="model dtype (default fp32)")
    parser.add_argument("--cpu-offload", choices=["model", "sequential"], help="offload models to CPU between uses")
    parser.add_argument("--local-files-only", action="store_true", help="never touch the network")
    parser.add_argument("--glyph", help="also save the glyph image here")
    parser.add_argument("--layout-out", help="also save the layout JSON here")


def run(args: argparse.Namespace) -> int:
    from textgen.core.layout import Layout
    from textgen.core.outputs import OutputFiles
    from textgen.core.script import text_problem

    # 1. Everything checkable without a model, first (loading takes seconds)
    if not args.prompt.strip():
        raise CommandError("the prompt is empty")
    for i, text in enumerate(args.texts or []):
        problem = text_problem(text)
        if problem:
            raise CommandError(f"--texts {i + 1} ({text[:40]!r}) {problem}")
    layout = Layout.load(args.layout).validate() if args.layout else None
    if layout is not None and args.texts:
        raise CommandError("give --layout or --texts, not both (a layout already says which texts)")
    from textgen.pipeline import resolve_model

    model = resolve_model(args.model)  # a wrong path or a missing shipped model fails before torch loads

    import torch

    from textgen.pipeline import PosterPipeline, SpeedOptions

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    speed = SpeedOptions(dtype=args.dtype or "fp32", cpu_offload=args.cpu_offload)
    pipe = PosterPipeline.from_pretrained(
        model,
        args.controlnet,
        planner=args.planner,
        control=args.control,
        local_files_only=args.local_files_only,
        device=None if args.cpu_offload else device,
        speed=speed,
    )
    width, height = args.size if args.size else (None, None)
    out = pipe(
        args.prompt,
        layout=layout,
        texts=args.texts,
        negative_prompt=args.negative_prompt,
        num_images_per_prompt=args.num_images,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        controlnet_conditioning_scale=args.control_scale,
        seed=args.seed,
        height=height,
        width=width,
        best_of=args.best_of,
    )
    output = Path(args.output)
    keep = out.images[: args.num_images] if args.best_of > 1 else out.images
    paths = (
        [output]
        if len(keep) == 1
        else [output.with_name(f"{output.stem}_{k}{output.suffix}") for k in range(len(keep))]
    )
    with OutputFiles() as files:  # all outputs appear together, or none
        for image, path in zip(keep, paths):
            image.save(files.path(path))
        if args.glyph:
            out.glyph.save(files.path(args.glyph))
        if args.layout_out:
            out.layout.save(files.path(args.layout_out))
    texts = ", ".join(repr(t) for t in out.layout.texts) or "no text"
    score = f", OCR score {out.scores[0]:.2f} (best of {len(out.scores)})" if out.scores else ""
    print(f"wrote {', '.join(map(str, paths))} ({texts}{score})")
    return 0
