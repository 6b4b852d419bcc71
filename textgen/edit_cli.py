"""``textgen edit``: change the text of an existing image (a price on a poster, the name on a sign).

    textgen edit photo.jpg -o out.png --replace OPEN=CLOSED          # OCR finds OPEN; its box gets CLOSED
    textgen edit poster.png -o out.png --box 40,30,220,80 --text SALE  # a box in pixels and its new text
    textgen edit poster.png -o out.png --layout edits.json            # boxes and texts from a layout JSON

Every pixel outside the edited boxes (grown by ``--margin``) comes back exactly as it was (:mod:`textgen.edit`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from textgen.core.cliargs import CommandError, float_in, int_in
from textgen.pipeline_config import EDIT_METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the image to edit (png, jpg, webp...)")
    parser.add_argument("-o", "--output", required=True, help="the edited image")
    parser.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                        help="a box to repaint, in pixels (repeat; pair each with a --text)")  # fmt: skip
    parser.add_argument("--text", action="append", default=[], help="the new text of the matching --box")
    parser.add_argument("--layout", help="a layout JSON: its boxes and texts are the edits")
    parser.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                        help="find OLD with OCR and write NEW in its box (repeat)")  # fmt: skip
    parser.add_argument("--prompt", help="what the edited region should look like (default: from the old text)")
    parser.add_argument("--model", default=None, help="default: the model shipped with textgen")
    parser.add_argument("--controlnet", help="ControlNet folder or hub id, for a Stable Diffusion base")
    parser.add_argument("--margin", type=float_in(0.0, 2.0), default=0.15, help="mask = box grown by this x height")
    parser.add_argument("--steps", type=int_in(1, 1000), help="denoising steps (default: the model's)")
    parser.add_argument("--guidance", type=float_in(0.0, 100.0), help="guidance (default: the model's)")
    parser.add_argument("--method", choices=EDIT_METHODS, default="auto",
                        help="native: the model repaints the hole (a model trained to edit); blend: any")  # fmt: skip
    parser.add_argument("--best-of", type=int_in(1, 16), default=1, help="try N seeds, keep the best by OCR")
    parser.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0)
    parser.add_argument("--engine", default="default", help="OCR engine for --replace and the read-back")
    parser.add_argument("--local-files-only", action="store_true", help="never touch the network")


def _parse_box(value: str, index: int) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in value.split(","))
    except ValueError as err:
        raise CommandError(f"--box {index + 1}: expected X0,Y0,X1,Y1 in pixels, got {value!r}") from err
    return x0, y0, x1, y1


def replacements(found: list, old: str, new: str) -> list[tuple[Any, str]]:
    """The OCR lines that hold ``old`` and the text each becomes: a line that reads ``old`` (any case) becomes
    ``new``; a line where ``old`` is one of its words keeps its other words (``WHY PAY FOR`` with ``PAY=BUY``
    becomes ``WHY BUY FOR``), since the line's box is what gets repainted."""
    exact = [(b, new) for b in found if b.text.strip().lower() == old.lower()]
    if exact:
        return exact
    pattern = re.compile(rf"(?<!\S){re.escape(old)}(?!\S)", re.IGNORECASE)
    return [(b, pattern.sub(new, b.text.strip())) for b in found if pattern.search(b.text)]


def read_edits(args: argparse.Namespace, image, engine) -> tuple[list[tuple[str, tuple]], list[str]]:
    """The ``(new text, pixel box)`` edits the arguments ask for, and notes on what OCR found.

    Raises:
        CommandError: mismatched --box/--text, a box outside the image or empty, OLD not found by OCR.
    """
    from textgen.core.layout import Layout

    if len(args.box) != len(args.text):
        raise CommandError(f"give one --text per --box ({len(args.box)} boxes, {len(args.text)} texts)")
    edits = [(t, _parse_box(b, i)) for i, (b, t) in enumerate(zip(args.box, args.text))]
    if args.layout:
        layout = Layout.load(args.layout).resized(image.width, image.height)
        edits += [(b.text, tuple(float(v) for v in b.to_pixels(image.width, image.height))) for b in layout.boxes]
    notes = []
    if args.replace:
        found = engine.read(image)
        for item in args.replace:
            old, sep, new = item.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise CommandError(f"--replace {item!r}: expected OLD=NEW")
            hits = replacements(found, old.strip(), new.strip())
            if not hits:
                seen = ", ".join(repr(b.text) for b in found) or "nothing"
                raise CommandError(f"--replace: {old!r} not found in {args.image}; OCR read {seen}")
            for hit, text in hits:
                edits.append((text, hit.box))
                notes.append(f"{hit.text!r} at {[round(v) for v in hit.box]} -> {text!r}")
    if not edits:
        raise CommandError("nothing to edit: give --box/--text, --layout or --replace OLD=NEW")
    for i, (text, (x0, y0, x1, y1)) in enumerate(edits):
        if not (0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height):
            raise CommandError(
                f"edit {i + 1} ({text!r}): box {[x0, y0, x1, y1]} is empty or outside the {image.width}x"
                f"{image.height} image"
            )
    return edits, notes


def run(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from textgen.core.layout import Layout
    from textgen.core.ocr import get_engine
    from textgen.core.outputs import OutputFiles
    from textgen.pipeline_config import resolve_model

    path = Path(args.image)
    if not path.is_file():
        raise CommandError(f"{path}: no such image file")
    try:
        image = Image.open(path)
        image.load()
        image = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise CommandError(f"{path}: not a readable image ({err})") from err
    model = resolve_model(args.model)
    engine = get_engine(args.engine, threads=1)
    edits, notes = read_edits(args, image, engine)
    layout = Layout.from_pixels(edits, image.width, image.height)
    layout.validate()

    from textgen.pipeline import PosterPipeline

    pipe = PosterPipeline.from_pretrained(model, args.controlnet, local_files_only=args.local_files_only,
                                          ocr_engine=engine)  # fmt: skip
    out = pipe.edit(image, layout, prompt=args.prompt, best_of=args.best_of, seed=args.seed, margin=args.margin,
                    num_inference_steps=args.steps, guidance_scale=args.guidance, method=args.method)  # fmt: skip
    with OutputFiles() as files:
        out.images[0].save(files.path(args.output))
    for note in notes:
        print(f"found {note}")
    reads = ", ".join(f"{t!r} reads {r!r}" for t, r in zip(out.layout.texts, out.ocr_texts[0]))
    print(f"wrote {args.output} ({reads}; OCR score {out.scores[0]:.2f})")
    return 0
