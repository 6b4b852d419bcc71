"""An image grid of a model on prompts: per prompt, the glyph, the image, and the image with the glyph blanked.

Usage: python recipes/sample_grid.py PROMPTS.jsonl -o grid.png [--model M] [--n 8] [--steps S] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the grid; returns 0."""
    from textgen.evaluate import load_prompts
    from textgen.pipeline import PosterPipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", help="prompt set (.jsonl, as textgen evaluate --prompts reads)")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--n", type=int, default=8, help="prompts (rows)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cell", type=int, default=128, help="cell side in pixels")
    args = parser.parse_args(argv)

    pipe = PosterPipeline.from_pretrained(args.model, local_files_only=True)
    specs = load_prompts(args.prompts)[: args.n]
    cell, label = args.cell, 14
    columns = ("glyph", "textgen-tiny", "glyph blanked")
    grid = Image.new("RGB", (cell * len(columns), label + cell * len(specs)), "white")
    draw = ImageDraw.Draw(grid)
    for j, name in enumerate(columns):
        draw.text((j * cell + 4, 1), name, fill="black")
    for i, spec in enumerate(specs):
        kwargs = dict(texts=list(spec.texts) if spec.texts else None, num_inference_steps=args.steps, progress=False)
        out = pipe(spec.prompt, seed=args.seed + i, **kwargs)
        blank = pipe(spec.prompt, seed=args.seed + i, controlnet_conditioning_scale=0.0, **kwargs)
        for j, image in enumerate((out.glyph, out.images[0], blank.images[0])):
            grid.paste(image.convert("RGB").resize((cell, cell)), (j * cell, label + i * cell))
    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out_path)
    print(f"wrote {out_path} ({len(specs)} prompts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
