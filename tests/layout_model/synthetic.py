"""Synthetic caption -> layout pairs for planner tests, written as the data stage's shards.

Captions read like the prompt benchmarks (``A sign that says "WORD".``) with one to three quoted made-up words;
the layouts come from a rule planner with one fixed style, so the geometry is a function of the texts that a
tiny model can learn. Words are built from syllables of a per-split random generator: held-out prompts use
words never seen in training.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image

from layout_model.rule import RuleOptions, RulePlanner
from textgen.core.shards import TripleRecord, write_triple

TEMPLATES_1 = (
    'A sign that says "{0}".',
    'A poster with the word "{0}" on it',
    '"{0}" written on a brick wall',
    'a t-shirt that reads "{0}"',
    'a neon sign saying "{0}" at night',
    'a book cover titled "{0}"',
)
TEMPLATES_N = (
    'A poster that says "{0}" with "{1}" below',
    'a flyer reading "{0}" and "{1}"',
    'a shop sign "{0}" with the words "{1}" under it',
)
TEMPLATES_3 = ('a concert poster "{0}" with "{1}" and "{2}"', 'a menu board: "{0}", "{1}" and "{2}"')
SYLLABLES = "ka lo mi ne ru sa te vo zi pa do fe gu hi ja be co".split()

STYLE = RuleOptions(styles=("center",), anchors=(0.0,), title_width=(0.8, 0.8), subtitle_ratio=(0.5, 0.5))


def make_word(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
    return word.upper() if rng.random() < 0.5 else word.capitalize()


def make_caption(rng: random.Random) -> tuple[str, list[str]]:
    n = rng.choice((1, 1, 1, 2, 2, 3))
    words: list[str] = []
    while len(words) < n:
        word = make_word(rng)
        if word not in words:
            words.append(word)
    template = rng.choice({1: TEMPLATES_1, 2: TEMPLATES_N, 3: TEMPLATES_3}[n])
    return template.format(*words), words


def make_pairs(n: int, seed: int):
    """``n`` (caption, layout) pairs; the layout is the fixed-style rule planner's."""
    rng = random.Random(seed)
    planner = RulePlanner(STYLE)
    pairs = []
    for _ in range(n):
        caption, words = make_caption(rng)
        pairs.append((caption, planner.plan(caption, words, 512, 512, seed=0)))
    return pairs


def write_pair_shards(out_dir: Path, n: int, seed: int, shard_size: int = 500) -> Path:
    """Writes ``n`` pairs as webdataset shards of :mod:`textgen.core.shards` triples (a blank 16x16 image each)."""
    import webdataset as wds

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buf, format="PNG")
    png = buf.getvalue()
    pairs = make_pairs(n, seed)
    for start in range(0, n, shard_size):
        with wds.TarWriter(str(out_dir / f"{start // shard_size:05d}.tar")) as tar:
            for i, (caption, layout) in enumerate(pairs[start : start + shard_size], start=start):
                record = TripleRecord(
                    key=f"{i:06d}",
                    width=16,
                    height=16,
                    layout=layout.resized(16, 16),
                    caption="a sign",
                    training_caption=caption,
                    source={"generator": "tests.layout_model.synthetic", "seed": seed},
                )
                write_triple(tar, record, png, "png")
    return out_dir
