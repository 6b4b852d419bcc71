"""``textgen layout PROMPT -o layout.json [--planner rule|PATH] [--glyph glyph.png]``: plan a layout from a prompt."""

from __future__ import annotations

import argparse
import sys

from textgen.core.cliargs import parse_size

LEGIBLE_PX = 8  # below this box height no renderer or model makes a text readable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help='the prompt; quoted spans are the texts: A poster that says "BLUE NOTE"')
    parser.add_argument("-o", "--output", required=True, help="layout JSON to write")
    parser.add_argument(
        "--planner", default="rule", help="'rule' (default, no model) or an LLM planner folder / hub id"
    )
    parser.add_argument(
        "--text",
        action="append",
        dest="texts",
        metavar="TEXT",
        help="a text to place (repeat for several); overrides the prompt's quotes",
    )
    parser.add_argument("--seed", type=int, default=0, help="layout seed: same seed, same layout (default 0)")
    parser.add_argument("--size", type=parse_size, default=(512, 512), help="canvas WxH in pixels (default 512x512)")
    parser.add_argument("--glyph", help="also render the layout as a glyph image (.png)")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="let an LLM planner run its repository's own code"
    )


def run(args: argparse.Namespace) -> int:
    from layout_model.planner import load_planner
    from textgen.core.outputs import OutputFiles
    from textgen.core.script import text_problem

    for i, text in enumerate(args.texts or []):
        problem = text_problem(text)
        if problem:
            raise ValueError(f"--text {i + 1} ({text[:40]!r}) {problem}")
    kwargs = {"trust_remote_code": True} if args.trust_remote_code and args.planner != "rule" else {}
    planner = load_planner(args.planner, **kwargs)
    width, height = args.size
    layout = planner.plan(args.prompt, texts=args.texts, width=width, height=height, seed=args.seed)
    with OutputFiles() as out:  # the layout and the glyph appear together, or neither
        layout.save(out.path(args.output))
        if args.glyph:
            from textgen.core.glyph import GlyphOptions, render_glyph

            render_glyph(layout, options=GlyphOptions(on_missing="warn")).save(out.path(args.glyph))
    placed = ", ".join(repr(t) for t in layout.texts) or "no text"
    print(f"wrote {args.output} ({width}x{height}, {len(layout.boxes)} boxes: {placed})")
    if args.glyph:
        print(f"wrote {args.glyph}")
    if not layout.boxes:
        print("note: the prompt quotes no text; put the words in quotes or pass --text", file=sys.stderr)
    heights = [(b.box[3] - b.box[1]) * height for b in layout.boxes]
    small = [h for h in heights if h < LEGIBLE_PX]
    if small:
        print(
            f"warning: {len(small)} of {len(heights)} boxes are under {LEGIBLE_PX} px high (smallest {min(small):.1f} "
            "px): too small to read; place fewer texts or use a larger canvas",
            file=sys.stderr,
        )
    return 0
