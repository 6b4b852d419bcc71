"""The ``textgen`` command line.

Each subcommand lives in a module that exposes ``add_arguments(parser)`` and ``run(args) -> int``; this file
only lists them, so ``textgen --help`` stays fast (no torch import) and every package owns its commands.
Bad input ends with one ``textgen CMD: error: ...`` line on stderr and a non-zero exit, never a traceback
(set ``TEXTGEN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from textgen.core.cliargs import CommandError, float_in, int_in, parse_size  # noqa: F401  (used by the commands)

# name -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("textgen.cli", "render a layout JSON as a glyph image (black text on white)"),
    "generate": ("textgen.generate", "paint a poster for a prompt (plan layout, render glyph, ControlNet + SD)"),
    "edit": ("textgen.edit_cli", "change the text of an existing image; every other pixel stays as it was"),
    "prep": ("data_prep.prep", "turn real images into (image, layout, caption) triples: OCR, captions, filters"),
    "synth": ("data_prep.synth", "write synthetic poster triples (image, layout, caption) with exact ground truth"),
    "evaluate": ("textgen.evaluate", "OCR legibility report (Sentence Acc, NED, Acc, LD, P/R/F) of images or prompts"),
    "train-controlnet": ("textgen.train_controlnet", "train a glyph ControlNet (from scratch: with its base)"),
    "train-recognizer": ("textgen.train_recognizer", "train the small word recognizer (OCR loss, fast best-of-N)"),
    "layout": ("layout_model.cli", "plan a layout (text boxes) for a prompt with the rule or an LLM planner"),
    "train-planner": ("layout_model.train", "fine-tune a causal LM into a layout planner (caption -> boxes)"),
    "ui": ("textgen.ui", "local web app: plan a layout, edit its boxes over the glyph preview, generate, download"),
}

EXIT_BAD_INPUT = 2


# ------------------------------------------------------------------------------------------------- render
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("layout", help="layout JSON file (see examples/)")
    parser.add_argument("-o", "--output", required=True, help="output image (.png)")
    parser.add_argument("--size", type=parse_size, help="canvas WxH in pixels (default: the layout's)")
    parser.add_argument("--font", help="font name or TTF/OTF/TTC path for boxes that name none")
    parser.add_argument("--mask", action="store_true", help="white text on black instead of black on white")
    parser.add_argument(
        "--on-missing",
        choices=["error", "warn"],
        default="error",
        help="characters no font can draw: fail (default) or warn and drop them",
    )


def run(args: argparse.Namespace) -> int:
    from textgen.core.fonts import resolve_font
    from textgen.core.glyph import GlyphOptions, render_glyph
    from textgen.core.layout import Layout, LayoutError

    layout = Layout.load(args.layout)
    try:
        layout.validate()
    except LayoutError as err:
        raise LayoutError(f"{args.layout}: {err}") from err
    if args.font:
        resolve_font(args.font)
    image = render_glyph(
        layout, size=args.size, font=args.font, mask=args.mask, options=GlyphOptions(on_missing=args.on_missing)
    )
    from textgen.core.outputs import OutputFiles

    with OutputFiles() as out:
        image.save(out.path(args.output))
    print(f"wrote {args.output} ({image.width}x{image.height}, {len(layout.boxes)} boxes)")
    return 0


# --------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textgen", description="Legible text in generated images.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _version() -> str:
    from textgen import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textgen`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"textgen {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line for the user; the traceback on request
        if os.environ.get("TEXTGEN_DEBUG"):
            raise
        if not isinstance(err, (CommandError, ValueError, OSError, KeyError, RuntimeError, ImportError)):
            raise
        print(f"textgen {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _one_line(err: BaseException) -> str:
    message = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError):
        message = f"missing key {message}"
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
