"""The new user's test: ``textgen generate 'A poster that says "WORD"'`` for a few seeds, read back with RapidOCR.

    python recipes/open_test.py [--model M] [--words OPEN SALE ...] [--seeds 8] [--steps S --guidance G]

For each word and seed, the product path exactly as ``textgen generate`` runs it (planner, glyph, model, default
sampler unless given), the word's box read by RapidOCR as ``textgen evaluate`` reads it. Prints a table of exact
reads per word and writes the images with ``--out``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORDS = ("OPEN", "SALE", "CAFE", "STOP", "HELLO", "PIZZA", "JAZZ", "MUSIC", "FRESH", "PARTY")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--words", nargs="+", default=list(WORDS))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for the images and results.json")
    args = parser.parse_args(argv)

    from textgen.core.ocr import get_engine
    from textgen.evaluate import read_boxes
    from textgen.pipeline import PosterPipeline

    engine = get_engine("rapidocr", threads=1)
    pipe = PosterPipeline.from_pretrained(args.model, local_files_only=True, ocr_engine=engine)
    results: dict[str, Any] = {}
    for word in args.words:
        reads = []
        for seed in range(args.seeds):
            out = pipe(f'A poster that says "{word}"', seed=seed, num_inference_steps=args.steps,
                       guidance_scale=args.guidance, progress=False)  # fmt: skip
            read = read_boxes(out.images[0], out.layout, engine)[0]
            reads.append(read)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                out.images[0].save(args.out / f"{word}_{seed}.png")
        results[word] = {"exact": sum(r == word for r in reads), "seeds": args.seeds, "reads": reads}
    print("| word | exact reads | what OCR read |\n|---|---:|---|")
    for word, r in results.items():
        print(f"| {word} | {r['exact']}/{r['seeds']} | {', '.join(repr(x) for x in r['reads'])} |")
    total = sum(r["exact"] for r in results.values())
    print(f"\n{total}/{len(args.words) * args.seeds} exact")
    if args.out:
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
