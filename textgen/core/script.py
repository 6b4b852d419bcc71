"""Rules about the characters of a text: which script, what can be drawn, what needs shaping, where lines break.

The one home of the character rules that the glyph renderer, the planner's measurer, the metrics, the fonts, the
OCR stage and the data filters share: a box sized by the planner is broken into lines exactly as the renderer
breaks it, and every part agrees on what counts as CJK.
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


# ---------------------------------------------------------------------------------------------- scripts
KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF))
HANGUL = ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))
HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FFFF))
CJK_PUNCTUATION = ((0x3000, 0x303F), (0xFF00, 0xFFEF))  # ideographic punctuation, full-width forms


def _in(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in ranges)


def is_kana(char: str) -> bool:
    return _in(char, KANA)


def is_hangul(char: str) -> bool:
    return _in(char, HANGUL)


def is_han(char: str) -> bool:
    return _in(char, HAN)


def is_cjk(char: str) -> bool:
    """A character of Chinese, Japanese or Korean writing (or their punctuation): written without spaces."""
    return is_han(char) or is_kana(char) or is_hangul(char) or _in(char, CJK_PUNCTUATION)


def has_cjk(text: str) -> bool:
    return any(is_cjk(c) for c in text)


def text_language(text: str, hint: str | None = None) -> str:
    """The language a text's characters say: ``"ja"`` (kana), ``"ko"`` (hangul), ``"zh"`` (Han alone); Latin text
    the ``hint`` when it names a Latin-script language, else ``"en"``; other scripts ``"other"`` unless the hint
    names their language."""
    if any(is_kana(c) for c in text):
        return "ja"
    if any(is_hangul(c) for c in text):
        return "ko"
    if any(is_han(c) for c in text):
        return "zh"
    if any(unicodedata.category(c).startswith("L") and ord(c) > 0x24F for c in text):  # beyond Latin Extended
        return hint if hint not in (None, "en", "zh") else "other"
    return hint if hint not in (None, "zh", "ja", "ko") else "en"


# ------------------------------------------------------------------------------------------ line breaking
def line_units(text: str) -> tuple[list[str], str]:
    """Unbreakable pieces of ``text`` and the joiner that glues them back: words, or CJK characters."""
    stripped = text.strip()
    if " " in stripped:
        return stripped.split(), " "
    if has_cjk(stripped):
        return list(stripped), ""
    return [stripped], ""


def split_balanced(units: list[str], joiner: str, n_lines: int, widths: list[float], gap: float) -> tuple[str, ...]:
    """Breaks ``units`` into ``n_lines`` lines, greedily aiming each line at the average width.

    Args:
        units: The pieces (:func:`line_units`).
        joiner: What goes between two pieces on one line.
        n_lines: Lines wanted (fewer come out when there are fewer pieces).
        widths: Width of each piece.
        gap: Width of the joiner.
    """
    total = sum(widths) + gap * (len(units) - 1)
    target = total / n_lines
    lines: list[list[str]] = [[]]
    current = 0.0
    for i, (unit, w) in enumerate(zip(units, widths)):
        remaining_units = len(units) - i
        remaining_lines = n_lines - len(lines)
        add = w if not lines[-1] else w + gap
        # Start a new line when this one is full, or when every remaining line needs a unit.
        if lines[-1] and remaining_lines > 0 and (current + add / 2 > target or remaining_units <= remaining_lines):
            lines.append([])
            current, add = 0.0, w
        lines[-1].append(unit)
        current += add
    return tuple(joiner.join(line) for line in lines if line)
