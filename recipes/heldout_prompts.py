"""Turns ``textgen synth`` shards into a prompt set for ``textgen evaluate --prompts`` (held-out legibility test).

Each line holds the training-form caption as the prompt (``a sign with ... that reads "OPEN"``), the words to
paint, and the colours the caption names, so ``textgen evaluate`` can score Sentence Accuracy / NED on the planned
layout and check the colours. Generate the shards with a seed the training data never used.

Usage: python recipes/heldout_prompts.py SHARDS -o prompts.jsonl [--limit N]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def prompt_entry(record: dict) -> dict:
    """One ``textgen evaluate`` prompt-set entry from a synthetic triple record (its JSON dict).

    Raises:
        ValueError: naming the record key when it has no training caption or no words.
    """
    key = record.get("key", "?")
    caption = record.get("training_caption")
    texts = [box["text"] for box in (record.get("layout") or {}).get("boxes", [])]
    if not caption or not texts:
        raise ValueError(f"record {key}: needs a 'training_caption' and a layout with words (is it a synth shard?)")
    source = record.get("source") or {}
    text_colors = source.get("text_colors") or []
    entry = {"name": key, "prompt": caption, "texts": texts}
    if len(set(text_colors)) == 1:
        entry["text_color"] = text_colors[0]
    background = (source.get("background") or {}).get("colors")
    if background:
        entry["background_color"] = background
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the prompt set; returns 0."""
    from textgen.core.shards import iter_triples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", help="folder of textgen synth shards")
    parser.add_argument("-o", "--output", required=True, help="prompt set to write (.jsonl)")
    parser.add_argument("--limit", type=int, default=None, help="keep the first N samples")
    args = parser.parse_args(argv)
    entries = []
    for triple in iter_triples(args.shards):
        entries.append(prompt_entry(triple.record.to_dict()))
        if args.limit is not None and len(entries) >= args.limit:
            break
    if not entries:
        raise SystemExit(f"{args.shards}: no samples")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    print(f"wrote {len(entries)} prompts to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
