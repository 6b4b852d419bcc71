"""The README's before/after edit figures, made with the real command (``textgen edit --replace``).

1. a poster the model paints (``'A poster that says "SUMMER SALE"'``), then ``--replace SALE=PARTY``;
2. an ICDAR-2015 photo from the shared benchmarks (``img_9.jpg``, the green EXIT sign), ``--replace EXIT=OPEN``.

Each figure is the before and after side by side (the poster enlarged 2x, the photo cropped around the sign);
what OCR reads afterwards is printed.

Usage: python recipes/edit_figures.py --benchmarks ../shared/benchmarks -o docs/images [--model FOLDER]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

PHOTO = Path("ocr/images/icdar2015_mmocr/img_9.jpg")
PHOTO_CROP = (230, 140, 490, 295)  # around the EXIT sign (its box: 344,206 - 384,228)


def side_by_side(before: Image.Image, after: Image.Image, scale: int = 1, gap: int = 6) -> Image.Image:
    """``before`` and ``after`` next to each other on white, each enlarged ``scale`` times."""
    w, h = before.width * scale, before.height * scale
    out = Image.new("RGB", (2 * w + gap, h), "white")
    out.paste(before.resize((w, h), Image.Resampling.BICUBIC), (0, 0))
    out.paste(after.resize((w, h), Image.Resampling.BICUBIC), (w + gap, 0))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from textgen import cli

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", type=Path, required=True, help="the shared benchmarks folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where the two figures go")
    parser.add_argument("--model", help="default: the shipped model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the painted poster and of both edits")
    parser.add_argument("--work", type=Path, default=Path("edit_figures_work"), help="intermediate images")
    args = parser.parse_args(argv)
    photo = args.benchmarks / PHOTO
    if not photo.is_file():
        parser.error(f"{photo}: not found (give the shared benchmarks folder with --benchmarks)")
    args.work.mkdir(parents=True, exist_ok=True)
    args.output.mkdir(parents=True, exist_ok=True)
    model = ["--model", args.model] if args.model else []
    seed = ["--seed", str(args.seed)]

    poster, edited = args.work / "poster.png", args.work / "poster_party.png"
    steps = [
        ["generate", 'A poster that says "SUMMER SALE"', "-o", str(poster), *seed, *model],
        ["edit", str(poster), "-o", str(edited), "--replace", "SALE=PARTY", *seed, *model],
        ["edit", str(photo), "-o", str(args.work / "photo_open.png"), "--replace", "EXIT=OPEN", *seed, *model],
    ]
    for step in steps:
        print("textgen " + " ".join(step), flush=True)
        if cli.main(step) != 0:
            return 1
    side_by_side(Image.open(poster), Image.open(edited), scale=2).save(args.output / "edit_synthetic.png")
    before, after = Image.open(photo).convert("RGB"), Image.open(args.work / "photo_open.png")
    side_by_side(before.crop(PHOTO_CROP), after.crop(PHOTO_CROP)).save(args.output / "edit_photo.png")
    print(f"wrote {args.output / 'edit_synthetic.png'} and {args.output / 'edit_photo.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
