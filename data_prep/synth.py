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
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from textgen.core.colors import PALETTE
from textgen.core.fonts import available_fonts, font_style, get_font, missing_chars
from textgen.core.layout import Layout, TextBox
from textgen.core.shards import TripleRecord, TripleTarWriter, encode_image, write_triple

# ----------------------------------------------------------------------------------------------- vocabulary
# Named colours (the caption uses the name, the layout stores the exact hex of what was drawn): textgen.core.colors.

# Short words of posters, signs and flyers; numbers and prices are drawn as often as a real sign has them.
WORDS: tuple[str, ...] = (
    "open", "sale", "cafe", "stop", "hello", "new", "free", "hot", "big", "shop", "food", "pizza", "coffee",
    "book", "music", "party", "live", "love", "summer", "winter", "spring", "jazz", "rock", "night", "city",
    "park", "exit", "welcome", "home", "bar", "grill", "bakery", "taco", "sushi", "deals", "special", "today",
    "now", "soon", "closed", "market", "fresh", "juice", "tea", "beer", "wine", "gym", "yoga", "run", "play",
    "game", "win", "star", "moon", "sun", "fire", "ice", "gold", "art", "show", "film", "cinema", "event",
    "hotel", "taxi", "train", "club", "dance", "happy", "hour", "menu", "best", "super", "mega", "vintage",
    "retro", "street", "garden", "flower", "bread", "burger", "donut", "candy", "toys", "pets", "bike", "surf",
    "beach", "snow", "rain", "wild", "dream", "magic", "lucky", "peace", "smile", "relax", "enjoy", "join",
    "vote", "read", "learn", "school", "team", "go", "yes", "no", "wow", "cool", "fun", "spa", "pool", "farm",
)  # fmt: skip
NUMBERS: tuple[str, ...] = (
    "24/7", "50% OFF", "20% OFF", "$9.99", "$5", "$19", "2025", "2026", "NO. 1", "100%", "#1", "3 FOR 2",
    "$0.99", "10AM", "8PM", "1999", "70% OFF", "$49", "VOL. 2", "4K",
)  # fmt: skip
CJK_WORDS: tuple[str, ...] = (
    "开业", "特价", "欢迎", "咖啡", "新品", "促销", "美食", "音乐", "夏日", "书店", "折扣", "你好", "茶",
    "面包", "花店", "电影", "晚会", "免费", "限时", "热卖",
)  # fmt: skip

# Font -> sampling weight. Plain faces dominate (the learnable core); decorative faces keep variety.
FONT_WEIGHTS: dict[str, float] = {
    "noto-sans-bold": 3.0,
    "noto-sans": 2.0,
    "noto-serif": 2.0,
    "league-spartan": 2.0,
    "bebas-neue": 1.5,
    "comic-neue": 1.5,
    "lobster": 1.0,
    "kaushan-script": 0.7,
    "dancing-script": 0.7,
}
_ALL_CAPS_FONTS = {"bebas-neue"}  # draws lowercase as capitals: store the text as drawn
_CJK_FONT = "noto-sans-cjk-sc"
BACKGROUNDS = ("plain", "gradient", "noise", "stripes", "shapes")
MODES = ("simple", "easy", "poster")
# "easy" mode: heavy faces only, no patterned backgrounds, words across most of the canvas
_EASY_FONTS = {"noto-sans-bold": 3.0, "league-spartan": 2.0, "bebas-neue": 1.0}
_EASY_BACKGROUNDS = ("plain", "gradient", "noise", "stripes")
_EASY_WIDTH = (0.7, 0.9)  # the widest line spans this fraction of the canvas
_KINDS = ("a poster", "a sign", "a flyer", "a banner", "a card")


@dataclass(frozen=True)
class SynthOptions:
    """What the generator draws.

    Args:
        size: Canvas side in pixels (square).
        mode: ``"simple"``: 1-3 words on 1-2 lines, large. ``"easy"``: 1-3 bold upper-case words filling
            70-90% of the width (fonts and backgrounds restricted, no rotation). ``"poster"``: 1-``max_lines``
            lines of 1-3 words.
        max_lines: Most text lines in ``"poster"`` mode (1-4).
        cjk: Also draw Chinese words (in Noto Sans CJK SC) in about a third of the samples.
        fonts: Font names to draw with (default: the bundled Latin faces, weighted by :data:`FONT_WEIGHTS`).
        backgrounds: Background kinds to sample from (:data:`BACKGROUNDS`).
        rotation_prob: Chance that a sample's text is rotated.
        max_rotation: Largest rotation in degrees (either direction).
        min_cap: Smallest cap height as a fraction of the canvas (0.11 = 14 px at 128x128: still legible
            after a small model's 4x downsampling).
        max_cap: Largest cap height as a fraction of the canvas.
        min_contrast: Least WCAG contrast ratio between text and every background colour (4.5 = WCAG AA; at
            3.0 teal on black or gray on dark blue pass and are hard to read at 128x128).
    """

    size: int = 256
    mode: str = "simple"
    max_lines: int = 4
    cjk: bool = False
    fonts: tuple[str, ...] | None = None
    backgrounds: tuple[str, ...] = BACKGROUNDS
    rotation_prob: float = 0.25
    max_rotation: float = 12.0
    min_cap: float = 0.11
    max_cap: float = 0.24
    min_contrast: float = 4.5

    def validate(self) -> SynthOptions:
        """Checks the options and returns them; raises ``ValueError`` naming the bad field."""
        if not 32 <= self.size <= 4096:
            raise ValueError(f"size must be between 32 and 4096 pixels, got {self.size}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 1 <= self.max_lines <= 4:
            raise ValueError(f"max_lines must be 1-4, got {self.max_lines}")
        unknown = set(self.backgrounds) - set(BACKGROUNDS)
        if not self.backgrounds or unknown:
            raise ValueError(f"backgrounds must be a non-empty subset of {BACKGROUNDS}, got {self.backgrounds}")
        if not 0 < self.min_cap <= self.max_cap < 0.6:
            raise ValueError(f"need 0 < min_cap <= max_cap < 0.6, got {self.min_cap}, {self.max_cap}")
        if not 0 <= self.rotation_prob <= 1 or not 0 <= self.max_rotation <= 45:
            raise ValueError("rotation_prob must be in [0, 1] and max_rotation in [0, 45] degrees")
        known = available_fonts()
        for name in self.fonts or ():
            if name not in known:
                raise ValueError(f"fonts: unknown font {name!r}; expected names from {sorted(known)}")
        if self.cjk and _CJK_FONT not in known:
            raise ValueError("cjk=True needs the Noto Sans CJK font: pip install noto-cjk-sans-otc")
        return self


@dataclass
class SynthSample:
    """One generated sample with everything a test or benchmark may want to check.

    Args:
        image: The poster (RGB).
        background: The same canvas before any text was drawn.
        mask: The ink of the text exactly as drawn, ``"L"``, 255 on the text (the aligned training glyph).
        record: The triple record (layout with one box per line, captions, generator parameters).
        words: Exact per-word ground truth: ``{"text", "polygon"}`` in pixels (rotated with the line).
    """

    image: Image.Image
    background: Image.Image
    mask: Image.Image
    record: TripleRecord
    words: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------- colours
def _luminance(rgb: Sequence[int]) -> float:
    def channel(v: float) -> float:
        v /= 255.0
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(float(c)) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: Sequence[int], b: Sequence[int]) -> float:
    """WCAG 2 contrast ratio between two colours (1 = identical, 21 = black on white)."""
    la, lb = _luminance(a), _luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def _shade(rgb: Sequence[int], amount: float) -> tuple[int, int, int]:
    """Mixes a colour towards black (dark colours towards white) by ``amount``: a second tone of one hue."""
    target = 255.0 if _luminance(rgb) < 0.18 else 0.0
    return tuple(int(round(c + (target - c) * amount)) for c in rgb)


# --------------------------------------------------------------------------------------------- backgrounds
def _background(rng: np.random.Generator, size: int, kind: str) -> tuple[Image.Image, dict[str, Any]]:
    """Draws a background of ``kind``; returns it with its description (colour names, all RGB colours present)."""
    names = list(PALETTE)
    base = str(rng.choice(names))
    c0 = PALETTE[base]
    info: dict[str, Any] = {"kind": kind, "colors": [base], "rgb": [c0]}
    if kind == "plain":
        return Image.new("RGB", (size, size), c0), info
    if kind == "gradient":
        c1 = _shade(c0, float(rng.uniform(0.25, 0.45)))
        direction = float(rng.choice([0.0, 90.0, 45.0, 135.0]))
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
        t = xx * math.cos(math.radians(direction)) + yy * math.sin(math.radians(direction))
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        arr = np.asarray(c0, np.float32) * (1 - t[..., None]) + np.asarray(c1, np.float32) * t[..., None]
        info["rgb"] = [c0, c1]
        return Image.fromarray(arr.round().astype(np.uint8)), info
    if kind == "noise":
        sigma = float(rng.uniform(8, 22))
        noise = rng.normal(0.0, sigma, size=(size, size, 1)).astype(np.float32)
        arr = np.clip(np.asarray(c0, np.float32) + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.0, 1.2))))
        lo, hi = np.clip(np.asarray(c0) - 2 * sigma, 0, 255), np.clip(np.asarray(c0) + 2 * sigma, 0, 255)
        info["rgb"] = [tuple(int(v) for v in lo), tuple(int(v) for v in hi)]
        return image, info
    if kind == "stripes":
        # A second palette colour of similar lightness keeps one text colour readable on both.
        partners = [n for n in names if n != base and contrast_ratio(PALETTE[n], c0) < 1.5]
        if partners and rng.random() < 0.6:
            other = str(rng.choice(partners))
            c1 = PALETTE[other]
            info["colors"] = [base, other]
        else:
            c1 = _shade(c0, float(rng.uniform(0.2, 0.35)))
        period = max(4, int(size * float(rng.uniform(0.04, 0.12))))
        vertical = bool(rng.random() < 0.5)
        idx = np.arange(size) // (period // 2 if period >= 4 else 2) % 2
        band = idx[None, :] if vertical else idx[:, None]
        arr = np.where(np.broadcast_to(band, (size, size))[..., None] == 0, c0, c1).astype(np.uint8)
        info["rgb"] = [c0, c1]
        info["stripes"] = "vertical" if vertical else "horizontal"
        return Image.fromarray(arr), info
    # shapes: a plain background with a few circles, squares or triangles of a second colour
    other = str(rng.choice([n for n in names if n != base]))
    c1 = PALETTE[other]
    shape = str(rng.choice(["circles", "squares", "triangles"]))
    image = Image.new("RGB", (size, size), c0)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        r = size * float(rng.uniform(0.05, 0.18))
        cx, cy = (float(v) for v in rng.uniform(0, size, 2))
        if shape == "circles":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c1)
        elif shape == "squares":
            draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=c1)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=c1)
    info.update(colors=[base, other], rgb=[c0, c1], shapes=shape)
    return image, info


def _describe_background(info: dict[str, Any]) -> str:
    names = info["colors"]
    if info["kind"] == "plain":
        return f"a plain {names[0]} background"
    if info["kind"] == "gradient":
        return f"a {names[0]} gradient background"
    if info["kind"] == "noise":
        return f"a grainy {names[0]} background"
    if info["kind"] == "stripes":
        colours = " and ".join(names)
        return f"a {colours} striped background"
    return f"a {names[0]} background patterned with {names[1]} {info['shapes']}"


def _text_colors(rng: np.random.Generator, bg_rgb: Sequence[Sequence[int]], min_contrast: float) -> list[str]:
    """Palette names readable on every background colour, best first when none reaches ``min_contrast``."""
    scored = [(min(contrast_ratio(PALETTE[n], c) for c in bg_rgb), n) for n in PALETTE]
    good = [n for score, n in scored if score >= min_contrast]
    if good:
        order = rng.permutation(len(good))
        return [good[i] for i in order]
    return [max(scored)[1]]


def _readable(bg_rgb: Sequence[Sequence[int]], min_contrast: float) -> bool:
    return any(min(contrast_ratio(PALETTE[n], c) for c in bg_rgb) >= min_contrast for n in PALETTE)


# ----------------------------------------------------------------------------------------------------- text
def _case(rng: np.random.Generator, word: str) -> str:
    if word.isupper() or not word.isascii() or any(c.isdigit() for c in word):
        return word
    r = rng.random()
    return word.upper() if r < 0.6 else word.title() if r < 0.9 else word.lower()


def _pick_lines(rng: np.random.Generator, opts: SynthOptions, chinese: bool) -> list[str]:
    """Chooses the text of each line (words joined by spaces)."""
    if opts.mode in ("simple", "easy"):
        n_words = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        n_lines = 1 if n_words == 1 else int(rng.choice([1, 2], p=[0.4, 0.6]))
    else:
        n_lines = int(rng.integers(1, opts.max_lines + 1))
        n_words = n_lines + int(rng.integers(0, n_lines + 1))
    words = []
    for _ in range(n_words):
        if chinese and rng.random() < 0.7:
            words.append(str(rng.choice(CJK_WORDS)))
        elif rng.random() < 0.18:
            words.append(str(rng.choice(NUMBERS)))
        else:
            words.append(str(rng.choice(WORDS)))
    upper = opts.mode == "easy" or rng.random() < 0.6  # one case style per sample, as a designer would
    words = [w.upper() if upper and w.isascii() else _case(rng, w) for w in words]
    if opts.mode == "easy":
        return words  # one word (or number) per line: each can be drawn large
    # Split the words over the lines, in order, at least one word per line.
    cuts = sorted(rng.choice(np.arange(1, n_words), size=n_lines - 1, replace=False)) if n_lines > 1 else []
    bounds = [0, *[int(c) for c in cuts], n_words]
    joiner = lambda chunk: "".join(chunk) if all(not w.isascii() for w in chunk) else " ".join(chunk)  # noqa: E731
    return [joiner(words[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]


def cap_height(font_name: str, size: int) -> int:
    """Ink height in pixels of a capital "H" (of "中" for CJK faces) in a bundled font at ``size``."""
    spec = available_fonts()[font_name]
    probe = "中" if font_name.startswith("noto-sans-cjk") else "H"
    _, y0, _, y1 = get_font(spec, size).getbbox(probe)
    return int(y1 - y0)


@dataclass
class _Line:
    text: str
    font: str
    size: int
    color: str
    mask: Image.Image  # rotated ink, cropped to its extent
    words: list[tuple[str, list[tuple[float, float]]]]  # word polygons relative to the mask's top-left


def _render_line(text: str, font_name: str, size: int, angle: float) -> _Line | None:
    """Draws one line in white on black, rotates it, crops it to the ink; word polygons follow the ink."""
    spec = available_fonts()[font_name]
    font = get_font(spec, size)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = 2 + size // 3  # getbbox spans the advance, not the ink: script faces overhang it
    w, h = int(math.ceil(x1 - x0)) + 2 * pad, int(math.ceil(y1 - y0)) + 2 * pad
    layer = Image.new("L", (w, h), 0)
    origin = (pad - x0, pad - y0)
    ImageDraw.Draw(layer).text(origin, text, font=font, fill=255)
    # Word boxes: each word drawn alone at its place in the line (prefix advance), measured on its own ink.
    words = []
    start = 0
    for word in text.split(" ") if " " in text else [text]:
        pos = text.index(word, start)
        start = pos + len(word)
        probe = Image.new("L", (w, h), 0)
        ImageDraw.Draw(probe).text((origin[0] + font.getlength(text[:pos]), origin[1]), word, font=font, fill=255)
        ink = probe.getbbox()
        if ink is None:
            continue
        bx0, by0, bx1, by1 = ink
        words.append((word, [(bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1)]))
    if angle:
        rotated = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        # PIL rotates counter-clockwise about the centre and re-centres the expanded canvas.
        cx, cy, ncx, ncy = w / 2, h / 2, rotated.width / 2, rotated.height / 2
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        words = [
            (wd, [(ncx + (x - cx) * c + (y - cy) * s, ncy - (x - cx) * s + (y - cy) * c) for x, y in poly])
            for wd, poly in words
        ]
        layer = rotated
    bbox = layer.getbbox()
    if bbox is None:
        return None
    mask = layer.crop(bbox)
    words = [(wd, [(x - bbox[0], y - bbox[1]) for x, y in poly]) for wd, poly in words]
    return _Line(text=text, font=font_name, size=size, color="", mask=mask, words=words)


def _fit_lines(
    rng: np.random.Generator, opts: SynthOptions, texts: list[str], font_name: str, angle: float
) -> list[_Line] | None:
    """Sizes and renders the lines; ``None`` when they cannot be drawn large enough on the canvas."""
    size_px = opts.size
    max_w = 0.9 * size_px
    cap_ratio = cap_height(font_name, 100) / 100.0
    min_cap_px = round(opts.min_cap * size_px)
    # One cap height for the block, a little variation per line (titles are bigger than subtitles).
    cap = float(rng.uniform(opts.min_cap, opts.max_cap)) * size_px
    spec = available_fonts()[font_name]
    easy_caps = []
    if opts.mode == "easy":  # each line as large as lets it span the target width, within its share of the height
        ref = get_font(spec, 100)
        target = float(rng.uniform(*_EASY_WIDTH)) * size_px
        share = 0.85 * size_px / (1.35 * len(texts))
        for text in texts:
            x0, _, x1, _ = ref.getbbox(text)
            easy_caps.append(max(min_cap_px, min(share, cap_ratio * 100 * target / max(x1 - x0, 1.0))))
        cap = max(easy_caps)
    lines = []
    for i, text in enumerate(texts):
        line_cap = max(min_cap_px, cap * (1.0 if i == 0 else float(rng.uniform(0.75, 1.0))))
        if easy_caps:
            line_cap = easy_caps[i]
        size = max(6, int(round(line_cap / cap_ratio)))
        while cap_height(font_name, size) < line_cap - 0.5:  # small sizes round the cap height down
            size += 1
        x0, _, x1, _ = get_font(spec, size).getbbox(text)
        c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
        width = (x1 - x0) * c + size * s
        if width > max_w:
            size = int(size * max_w / width)
        if cap_height(font_name, size) < min_cap_px:
            return None  # too long for the canvas at a legible size
        line = _render_line(text, font_name, size, angle)
        if line is None or line.mask.width > max_w + 2:
            return None
        lines.append(line)
    gap = 0.35 * cap
    total = sum(line.mask.height for line in lines) + gap * (len(lines) - 1)
    if total > 0.92 * size_px:
        return None
    return lines


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
