"""Named colours: the palette textgen paints and names, and the colour words a prompt gives its text.

``textgen synth`` paints with :data:`PALETTE` and names those colours in its captions; ``textgen evaluate`` checks
colours against it; the layout planner reads a prompt's text colour words (:func:`text_colors_from_prompt`) into
the boxes' ``color``.
"""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

# Name -> the exact RGB textgen synth paints (the caption uses the name, the layout the hex).
PALETTE: dict[str, RGB] = {
    "white": (245, 245, 242),
    "black": (22, 22, 24),
    "red": (210, 38, 38),
    "orange": (242, 133, 28),
    "yellow": (250, 212, 45),
    "green": (38, 150, 70),
    "blue": (36, 92, 210),
    "dark blue": (20, 32, 92),
    "purple": (120, 58, 170),
    "pink": (240, 128, 178),
    "brown": (112, 70, 38),
    "gray": (128, 128, 132),
    "beige": (232, 218, 184),
    "teal": (20, 128, 128),
}
_SPELLINGS = {"grey": "gray", "dark grey": "dark gray", "navy": "dark blue"}
_TEXT_NOUNS = r"(?:text|letters|lettering|words|writing|type|typography|font|title|headline)"


def to_hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def _names_pattern() -> str:
    names = sorted([*PALETTE, *_SPELLINGS], key=len, reverse=True)  # "dark blue" before "blue"
    return "|".join(re.escape(n) for n in names)


def text_colors_from_prompt(prompt: str) -> list[str]:
    """The colour names a prompt gives its text, in order: ``"red poster with white text"`` -> ``["white"]``.

    Recognised: ``<colour> text`` (also letters, lettering, words, type, title...), ``<colour> and <colour>
    text`` (one colour per line, in turn), an adjective between (``white bold text``), and ``text in <colour>``.
    Colours of other things (``a red poster``) are not text colours. Names are :data:`PALETTE`'s (``grey`` and
    ``navy`` are understood as ``gray`` and ``dark blue``).
    """
    names = _names_pattern()
    text = prompt.lower()
    before = re.search(rf"\b({names})(?:\s*(?:,|and|&)\s*({names}))?\s+(?:[a-z-]+\s+)?{_TEXT_NOUNS}\b", text)
    after = re.search(rf"\b{_TEXT_NOUNS}\s+(?:in|colou?red)\s+({names})(?:\s+and\s+({names}))?\b", text)
    match = before or after
    if match is None:
        return []
    found = [g for g in match.groups() if g]
    return [_SPELLINGS.get(n, n) for n in found]
