"""What ``textgen synth`` draws from: its vocabulary (words, numbers, fonts, backgrounds, modes) and its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from textgen.core.fonts import available_fonts
from textgen.core.shards import TripleRecord

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
