"""Glyph rendering speed: median milliseconds to render a 512x512 glyph image with 1, 4 and 16 boxes.

Two regimes are timed, each over ``--runs`` renders:

* ``cold``: every render gets new texts (nothing of the fitting is cached), as when rendering a dataset;
* ``warm``: the same layout again (fits cached), as when a UI or a best-of-N loop re-renders one layout.

The baseline in the same run is Pillow alone drawing the same texts at a fixed size with no fitting, which
is the floor any renderer built on Pillow pays.

Usage: ``python benchmarks/bench_glyph.py [--runs 50] [--out bench_results/glyph.json]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from textgen.core.fonts import get_font, resolve_font
from textgen.core.glyph import render_glyph
from textgen.core.layout import Layout, TextBox

WORDS = (
    "SUMMER SALE OPEN NOW FRESH COFFEE JAZZ NIGHT BLUE NOTE 50% OFF $19.99 Château festival tickets live "
    "music bakery grand opening today only free entry"
).split()


def make_layout(n_boxes: int, rng: random.Random, tag: str) -> Layout:
    """``n_boxes`` boxes on a grid, each with 1-3 random words (plus a tag so texts never repeat)."""
    rows = round(n_boxes**0.5)
    cols = -(-n_boxes // rows)
    boxes = []
    for i in range(n_boxes):
        r, c = divmod(i, cols)
        text = " ".join(rng.sample(WORDS, rng.randint(1, 3))) + f" {tag}{i}"
        boxes.append(TextBox(text, (c / cols + 0.01, r / rows + 0.01, (c + 1) / cols - 0.01, (r + 1) / rows - 0.01)))
    return Layout(512, 512, tuple(boxes))


def _pillow_floor(layout: Layout) -> None:
    image = Image.new("L", (layout.width, layout.height), 255)
    draw = ImageDraw.Draw(image)
    font = get_font(resolve_font(None), 32)
    for (x0, y0, _, _), text in zip(layout.pixel_boxes(), layout.texts):
        draw.text((x0, y0), text, font=font, fill=0)
    image.convert("RGB")


def _time_ms(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--boxes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--out", default="bench_results/glyph.json")
    args = parser.parse_args(argv)

    rng = random.Random(0)
    render_glyph(make_layout(4, rng, "warmup"))  # font files opened once, as in any long-lived process
    rows = []
    for n in args.boxes:
        cold = [_time_ms(render_glyph, make_layout(n, rng, f"c{k}_")) for k in range(args.runs)]
        same = make_layout(n, rng, "w")
        render_glyph(same)
        warm = [_time_ms(render_glyph, same) for _ in range(args.runs)]
        floor = [_time_ms(_pillow_floor, make_layout(n, rng, f"p{k}_")) for k in range(args.runs)]
        rows.append(
            {
                "boxes": n,
                "cold_ms": statistics.median(cold),
                "warm_ms": statistics.median(warm),
                "pillow_floor_ms": statistics.median(floor),
                "cold_vs_floor": statistics.median(cold) / statistics.median(floor),
            }
        )

    print(f"{'boxes':>5} | {'cold ms':>8} | {'warm ms':>8} | {'pillow-only ms':>14} | {'cold/pillow':>11}")
    print("-" * 59)
    for r in rows:
        print(
            f"{r['boxes']:>5} | {r['cold_ms']:8.2f} | {r['warm_ms']:8.2f} | {r['pillow_floor_ms']:14.2f} | "
            f"{r['cold_vs_floor']:10.1f}x"
        )
    result = {"benchmark": "glyph_render_512", "runs": args.runs, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
