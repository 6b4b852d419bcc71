"""Best-of-N against region repair at equal compute, on the held-out prompts (counted in UNet evaluations).

    python recipes/repair_study.py --model M --prompts data/study/heldout128.jsonl [--n 30] [--json out.json]

Arms: one image; best-of-N whole images (OCR picks); one image then K rounds of repair (OCR finds the wrong boxes,
only they are repainted); best-of-2 then repair. Each arm reports Sentence Accuracy and NED over all lines (the
held-out protocol, RapidOCR) and the UNet evaluations it spent per prompt (denoising steps x guidance factor x
images painted, repairs included).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ARMS = {
    "single": {"best_of": 1, "repair": 0},
    "best_of_2": {"best_of": 2, "repair": 0},
    "best_of_4": {"best_of": 4, "repair": 0},
    "repair_1": {"best_of": 1, "repair": 1},
    "repair_3": {"best_of": 1, "repair": 3},
    "best_of_2+repair_1": {"best_of": 2, "repair": 1},
}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--prompts", required=True, help="held-out prompt set (.jsonl)")
    parser.add_argument("--n", type=int, default=30, help="prompts")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from textgen.core.metrics import line_scores
    from textgen.core.ocr import get_engine
    from textgen.eval_read import read_boxes
    from textgen.evaluate import load_prompts
    from textgen.pipeline import PosterPipeline

    engine = get_engine("rapidocr", threads=1)
    pipe = PosterPipeline.from_pretrained(args.model, local_files_only=True, ocr_engine=engine)
    specs = load_prompts(args.prompts)[: args.n]
    results: dict[str, Any] = {}
    for name in args.arms:
        arm = ARMS[name]
        lines, evaluations = [], []
        for i, spec in enumerate(specs):
            out = pipe(spec.prompt, texts=list(spec.texts) if spec.texts else None, seed=i, progress=False, **arm)
            reads = out.ocr_texts[0] if out.ocr_texts else read_boxes(out.images[0], out.layout, engine)
            lines += line_scores(reads, out.layout.texts)
            evaluations.append(out.unet_evaluations)
        results[name] = {
            **arm,
            "sentence_accuracy": round(sum(s.exact for s in lines) / max(1, len(lines)), 4),
            "ned": round(sum(s.ned for s in lines) / max(1, len(lines)), 4),
            "lines": len(lines),
            "unet_evaluations_per_prompt": round(sum(evaluations) / max(1, len(evaluations)), 2),
        }
        print(f"{name}: {results[name]}", flush=True)
    print("\n| arm | Sentence Acc | NED | UNet evaluations per prompt |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['sentence_accuracy']:.3f} | {r['ned']:.3f} | {r['unet_evaluations_per_prompt']:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
