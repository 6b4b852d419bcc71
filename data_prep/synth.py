"""Synthetic poster-like triples with exact ground truth: image, layout (real ink boxes) and caption.

Every sample is a pure function of ``(seed, index, options)``: a background (plain, gradient, grainy noise,
stripes or simple shapes) in named colours, one to four lines of short poster words, prices and numbers in a
bundled font (decorative faces included, CJK optional), drawn in a colour that contrasts with the background,
optionally rotated. The layout box of each line is the axis-aligned extent of the ink actually drawn, so the
glyph renderer, OCR and the image agree; the caption names the background, the font style and the text
colours, and the training caption adds the words (``... that reads "OPEN" "24/7"``).

Every sample also stores the exact ink it drew (``{key}.mask.png``, white text on black): the training glyph of
a model that must paint its letters *on* the glyph's strokes. A glyph re-rendered from the layout box is fitted
by the renderer's own size search and lands a few pixels inside the drawn text (measured in FINDINGS).

Used for tests, for the OCR benchmark (``benchmarks/bench_ocr.py``) and to train the project's small models.
The default ``"simple"`` mode draws 1-3 large words (cap height at least 11% of the canvas, 14 px at 128x128) so
a small glyph-conditioned model can learn them; ``"easy"`` draws 1-3 bold upper-case words that fill most of the
width on plain, gradient, striped or grainy backgrounds (the curriculum's first stage); ``"poster"`` draws up to
``max_lines`` lines of 1-3 words.

CLI: ``textgen synth -o OUT --n N --size 128|256|512 --seed S [--shard-size N] [--workers N] [--mode M]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data_prep.synth_draw import (  # noqa: F401  (contrast_ratio and cap_height are part of the synth API)
    _background,
    _describe_background,
    _fit_lines,
    _hex,
    _Line,
    _pick_lines,
    _readable,
    _text_colors,
    cap_height,
    contrast_ratio,
)
from data_prep.synth_options import (  # noqa: F401
    _ALL_CAPS_FONTS,
    _CJK_FONT,
    _EASY_BACKGROUNDS,
    _EASY_FONTS,
    _KINDS,
    BACKGROUNDS,
    FONT_WEIGHTS,
    MODES,
    SynthOptions,
    SynthSample,
)
from textgen.core.colors import PALETTE
from textgen.core.fonts import available_fonts, font_style, missing_chars
from textgen.core.layout import Layout, TextBox
from textgen.core.shards import TripleRecord, TripleTarWriter, encode_image, write_triple


def make_sample(seed: int, index: int, options: SynthOptions | None = None) -> SynthSample:
    """Generates sample ``index`` of the stream ``seed`` (independent of every other sample).

    Args:
        seed: Stream seed.
        index: Sample number; the key is its zero-padded form.
        options: What to draw.

    Returns:
        The :class:`SynthSample`.
    """
    opts = (options or SynthOptions()).validate()
    rng = np.random.default_rng([int(seed), int(index)])
    size = opts.size
    easy = opts.mode == "easy"
    # 1. Background and the text colours readable on it
    # (a mid-grey gradient or black with yellow squares leaves no palette colour readable on all of it: redraw)
    kinds = [k for k in opts.backgrounds if k in _EASY_BACKGROUNDS] or list(_EASY_BACKGROUNDS) if easy else None
    kind = str(rng.choice(kinds or list(opts.backgrounds)))
    for _ in range(20):
        background, bg_info = _background(rng, size, kind)
        if _readable(bg_info["rgb"], opts.min_contrast):
            break
    colours = _text_colors(rng, bg_info["rgb"], opts.min_contrast)

    # 2. Font, words, size: retry until the text fits at a legible size (deterministic: same rng stream)
    table = _EASY_FONTS if easy else FONT_WEIGHTS
    font_names = list(opts.fonts or table)
    weights = np.asarray([table.get(n, 1.0) for n in font_names], dtype=np.float64)
    chinese = opts.cjk and not easy and rng.random() < 0.35
    angle = float(rng.uniform(-opts.max_rotation, opts.max_rotation)) if rng.random() < opts.rotation_prob else 0.0
    if easy:
        angle = 0.0
    lines: list[_Line] | None = None
    for attempt in range(40):
        texts = _pick_lines(rng, opts, chinese)
        font_name = _CJK_FONT if chinese else str(rng.choice(font_names, p=weights / weights.sum()))
        if font_name in _ALL_CAPS_FONTS:
            texts = [t.upper() for t in texts]
        spec = available_fonts()[font_name]
        if any(missing_chars(t, spec) for t in texts):
            continue
        lines = _fit_lines(rng, opts, texts, font_name, angle if attempt < 30 else 0.0)
        if lines is not None:
            break
    if lines is None:  # a single short word always fits
        font_name, texts = "noto-sans-bold", [str(rng.choice(["OPEN", "SALE", "NEW", "HOT"]))]
        lines = _fit_lines(rng, SynthOptions(**{**asdict(opts), "max_cap": opts.min_cap}), texts, font_name, 0.0)
        angle = 0.0
    if lines is None:
        raise ValueError(f"size {size}: the canvas is too small for legible text at min_cap={opts.min_cap}")

    # 3. Colours: one for the whole block, sometimes one per line
    per_line = len(lines) > 1 and len(colours) > 1 and rng.random() < 0.3
    for i, line in enumerate(lines):
        line.color = colours[i % len(colours)] if per_line else colours[0]

    # 4. Placement: a vertical block with a common alignment, inside a 5% margin
    margin = 0.05 * size
    gap = 0.35 * (sum(line.mask.height for line in lines) / len(lines)) * float(rng.uniform(0.4, 1.0))
    total = sum(line.mask.height for line in lines) + gap * (len(lines) - 1)
    top = float(rng.uniform(margin, max(margin, size - margin - total)))
    align = str(rng.choice(["center", "left", "right"], p=[0.6, 0.2, 0.2]))
    image = background.copy()
    ink = Image.new("L", (size, size), 0)
    boxes, words = [], []
    y = top
    for line in lines:
        w, h = line.mask.size
        slack = max(0.0, size - 2 * margin - w)
        if align == "center":
            x = margin + slack / 2 + float(rng.uniform(-0.15, 0.15)) * slack
        elif align == "left":
            x = margin + float(rng.uniform(0, 0.15)) * slack
        else:
            x = margin + slack - float(rng.uniform(0, 0.15)) * slack
        px, py = int(round(x)), int(round(y))
        px, py = min(max(px, 0), size - w), min(max(py, 0), size - h)
        image.paste(PALETTE[line.color], (px, py, px + w, py + h), mask=line.mask)
        ink.paste(255, (px, py, px + w, py + h), mask=line.mask)
        boxes.append(
            TextBox(
                text=line.text,
                box=(px / size, py / size, (px + w) / size, (py + h) / size),
                angle=round(angle, 2),
                font=line.font,
                color=_hex(PALETTE[line.color]),
                language="zh" if line.font == _CJK_FONT else "en",
            )
        )
        words.extend(
            {"text": wd, "polygon": [[round(px + wx, 2), round(py + wy, 2)] for wx, wy in poly]}
            for wd, poly in line.words
        )
        y += h + gap

    # 5. Captions: the description, and the training form with the words
    text_colours = list(dict.fromkeys(line.color for line in lines))
    style = font_style(lines[0].font)
    kind = str(rng.choice(_KINDS))
    caption = f"{kind} with {_describe_background(bg_info)} and {style} {' and '.join(text_colours)} text"
    training_caption = caption + " that reads " + " ".join(f'"{b.text}"' for b in boxes)
    layout = Layout(width=size, height=size, boxes=tuple(boxes), caption=caption)
    key = f"{int(index):09d}"
    source = {
        "generator": "data_prep.synth",
        "seed": int(seed),
        "index": int(index),
        "mode": opts.mode,
        "background": {k: v for k, v in bg_info.items() if k != "rgb"},
        "font": lines[0].font,
        "font_style": style,
        "font_sizes": [line.size for line in lines],
        "text_colors": text_colours,
        "angle": round(angle, 2),
        "words": words,
    }
    record = TripleRecord(
        key=key,
        width=size,
        height=size,
        layout=layout,
        caption=caption,
        training_caption=training_caption,
        source=source,
    )
    return SynthSample(image=image, background=background, mask=ink, record=record, words=words)


def generate_synthetic(
    n: int, size: int = 256, seed: int = 0, start: int = 0, **options: Any
) -> Iterator[tuple[Image.Image, TripleRecord]]:
    """Yields ``n`` synthetic ``(image, record)`` pairs.

    Args:
        n: Number of samples.
        size: Canvas side: 128, 256 or 512 (any value in 32-4096 works).
        seed: Stream seed: the same seed gives the same images and records, byte for byte.
        start: Index of the first sample (sample ``i`` depends only on ``seed`` and ``i``).
        **options: Further :class:`SynthOptions` fields (``mode``, ``cjk``, ``max_lines``...).

    Raises:
        ValueError: an option is out of range.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    opts = SynthOptions(size=int(size), **options).validate()
    for index in range(start, start + n):
        sample = make_sample(seed, index, opts)
        yield sample.image, sample.record


def _write_shard(out: Path, shard: int, start: int, count: int, seed: int, opts: SynthOptions) -> dict[str, Any]:
    """Writes shard ``shard`` (samples ``start`` .. ``start + count - 1``) and its stats; returns the stats."""
    name = f"{shard:05d}"
    t0 = time.perf_counter()
    with TripleTarWriter(out / f"{name}.tar") as tar:  # renamed into place only when complete
        for index in range(start, start + count):
            sample = make_sample(seed, index, opts)
            mask = {"mask.png": encode_image(sample.mask, "png")}
            write_triple(tar, sample.record, encode_image(sample.image, "png"), "png", extra=mask)
    stats = {
        "shard": name,
        "inputs": count,
        "written": count,
        "rejected": {},
        "seconds": round(time.perf_counter() - t0, 3),
        "first_index": start,
        "seed": int(seed),
        "options": asdict(opts),
    }
    (out / f"{name}_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def _write_shard_star(job: tuple) -> dict[str, Any]:
    return _write_shard(*job)


def write_synthetic(
    out_dir: str | Path,
    n: int,
    size: int = 256,
    seed: int = 0,
    shard_size: int = 1000,
    progress: bool = False,
    workers: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """Writes ``n`` samples as webdataset shards ``{out_dir}/{shard:05d}.tar`` with ``{shard:05d}_stats.json``.

    Shards whose stats file exists are skipped, so an interrupted run can simply be run again (a shard is
    written to a temporary name and renamed when complete). Samples depend only on ``(seed, index)``, so the
    shards are the same bytes whatever the number of worker processes.

    Args:
        out_dir: Output folder (created).
        n: Number of samples.
        size: Canvas side.
        seed: Stream seed.
        shard_size: Samples per shard.
        progress: Print one line per shard.
        workers: Processes writing shards in parallel (1: in this process).
        **options: Further :class:`SynthOptions` fields.

    Returns:
        A summary: shards written and skipped, samples, seconds.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    opts = SynthOptions(size=int(size), **options).validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    jobs, skipped = [], 0
    for shard, start in enumerate(range(0, n, shard_size)):
        if (out / f"{shard:05d}_stats.json").exists():
            skipped += 1
            continue
        jobs.append((out, shard, start, min(shard_size, n - start), int(seed), opts))

    def report(stats: dict[str, Any]) -> None:
        if progress:
            print(f"shard {stats['shard']}: {stats['inputs']} samples in {stats['seconds']:.1f} s", flush=True)

    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            report(_write_shard(*job))
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for stats in pool.imap_unordered(_write_shard_star, jobs):
                report(stats)
    return {
        "out_dir": str(out),
        "samples": n,
        "shards_written": len(jobs),
        "shards_skipped": skipped,
        "seconds": round(time.perf_counter() - t_all, 3),
    }


# ------------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="output folder for the shards")
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--size", type=int, default=256, help="canvas side in pixels, 32-4096 (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="stream seed (same seed, same bytes)")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    parser.add_argument(
        "--mode", choices=MODES, default="simple", help="simple: 1-3 big words; easy: bold words filling the width; "
        "poster: 1-4 lines",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel (default 1)")
    parser.add_argument("--max-lines", type=int, default=4, help="most lines in poster mode (1-4)")
    parser.add_argument("--cjk", action="store_true", help="also draw Chinese words (Noto Sans CJK)")


def run(args: argparse.Namespace) -> int:
    summary = write_synthetic(
        args.output,
        n=args.n,
        size=args.size,
        seed=args.seed,
        shard_size=args.shard_size,
        progress=True,
        workers=args.workers,
        mode=args.mode,
        max_lines=args.max_lines,
        cjk=args.cjk,
    )
    print(
        f"wrote {summary['samples']} samples to {summary['out_dir']} "
        f"({summary['shards_written']} shards written, {summary['shards_skipped']} already done) "
        f"in {summary['seconds']:.1f} s"
    )
    return 0
