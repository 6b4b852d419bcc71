"""Rules about the characters of a text: what can be drawn, what needs shaping, what is a line-breaking unit.

One home for the character rules the renderer, the layout checks and the planner's measurer share.
"""

from __future__ import annotations

import unicodedata

MAX_TEXT_CHARS = 500  # per box: longer texts cannot be legible in one box, and fitting them costs seconds
_INVISIBLE = {"Cf", "Zs", "Zl", "Zp", "Cc", "Mn", "Me"}  # format, spaces, controls, lone combining marks
# Scripts whose letters change shape with their neighbours or are drawn right to left: drawn with raqm.
_SHAPED_RANGES = (
    (0x0590, 0x08FF),  # Hebrew, Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic, Arabic supplements
    (0x0900, 0x0DFF),  # Indic scripts
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0xFB1D, 0xFDFF),  # Hebrew and Arabic presentation forms
    (0xFE70, 0xFEFF),  # Arabic presentation forms B
)


def needs_shaping(text: str) -> bool:
    """Whether ``text`` has characters of a script that needs complex shaping or right-to-left layout."""
    return any(lo <= ord(c) <= hi for c in text for lo, hi in _SHAPED_RANGES)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be drawn as it is, or ``None`` when it can.

    Refused: an empty text; a lone surrogate (not Unicode text); control characters other than the line break
    ``\\n`` (a TAB, BEL or ESC would draw as a box; write a space instead); a text with no visible character
    (only spaces, zero-width or format characters such as U+200B, U+200D, U+FEFF); more than
    :data:`MAX_TEXT_CHARS` characters.
    """
    if not text or not text.strip():
        return "is empty"
    if len(text) > MAX_TEXT_CHARS:
        return f"has {len(text)} characters; at most {MAX_TEXT_CHARS} fit one box legibly"
    for i, char in enumerate(text):
        cp = ord(char)
        if 0xD800 <= cp <= 0xDFFF:
            return f"has a lone surrogate U+{cp:04X} at position {i} (not valid Unicode text)"
        if char != "\n" and unicodedata.category(char) == "Cc":
            name = {9: "TAB", 7: "BEL", 27: "ESC", 13: "CR", 0: "NUL"}.get(cp, "control character")
            hint = " (write a space)" if cp == 9 else " (use \\n for a line break)" if cp == 13 else ""
            return f"has a {name} (U+{cp:04X}) at position {i}, which draws nothing legible{hint}"
    if all(unicodedata.category(c) in _INVISIBLE for c in text):
        codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in text if not c.isspace()})) or "spaces"
        return f"has no visible character (only {codes})"
    return None
