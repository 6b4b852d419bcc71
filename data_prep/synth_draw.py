"""How ``textgen synth`` draws: colours that contrast, backgrounds, the words of a sample, lines sized and rendered
to their ink."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from data_prep.synth_options import (
    _EASY_WIDTH,
    CJK_WORDS,
    NUMBERS,
    WORDS,
    SynthOptions,
)
from textgen.core.colors import PALETTE
from textgen.core.fonts import available_fonts, get_font


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
