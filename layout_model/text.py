"""Which words to render: the quoted spans of a prompt.

A prompt asks for text by quoting it: ``A poster that says "BLUE NOTE"``. :func:`extract_texts` finds

* straight and typographic double quotes (``"..."``, ``“...”``, ``„...“``), and backslash-escaped ones
  (``\\"...\\"``, as prompt files exported from JSON often contain);
* CJK brackets ``「...」``, ``『...』``, ``《...》``;
* single quotes used as quotes (``'Hello World'``, ``‘openai’``), but not apostrophes (``Don't``,
  ``the dogs' bowl``, ``'90s``) nor the elision in ``rock 'n' roll``.

Double quotes are read first; a single-quoted span inside a double-quoted one is part of its text
(``"Let's PAINT!"``). Empty quotes give nothing, and a prompt without quotes asks for no text at all: that is
not an error. Texts keep their own punctuation (``'Hello, world.'``) except a trailing comma that belongs to
the sentence (``"THE," "RA," and "SA"``), and repeated texts are kept once, in order of first appearance.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# Double-quote characters: which may open and which may close a span.
_DOUBLE_OPEN = {'"': '"', "“": "”", "„": "“", "«": "»", "＂": "＂"}
_DOUBLE_CLOSE_ALTERNATIVES = {"“": ('"', "”"), "„": ("“", "”", '"'), '"': ('"', "”"), "«": ("»",), "＂": ("＂",)}
_CJK_PAIRS = {"「": "」", "『": "』", "《": "》"}
_SINGLE_OPEN = ("'", "‘")
_SINGLE_CLOSE = ("'", "’")
# Single-quoted "spans" that are elisions, not quotations: rock 'n' roll, fish 'n' chips.
_ELISIONS = frozenset({"n", "N"})
_ESCAPED_QUOTE = re.compile(r"\\([\"'])")


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch) in ("Mn", "Mc")


def _clean(span: str) -> str:
    text = " ".join(span.split())  # quoted text never carries the prompt's line breaks or double spaces
    if text.endswith(",") and len(text) > 1:
        text = text[:-1].rstrip()
    return text


def _double_spans(prompt: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the content of double-quoted and CJK-bracketed spans, in order."""
    spans: list[tuple[int, int]] = []
    i = 0
    n = len(prompt)
    while i < n:
        ch = prompt[i]
        closers: tuple[str, ...] | None = None
        if ch in _CJK_PAIRS:
            closers = (_CJK_PAIRS[ch],)
        elif ch in _DOUBLE_OPEN and not (ch == '"' and i > 0 and prompt[i - 1].isdigit()):
            closers = _DOUBLE_CLOSE_ALTERNATIVES[ch]  # (a straight quote after a digit is an inch mark: 12")
        if closers is None:
            i += 1
            continue
        end = min((j for j in (prompt.find(c, i + 1) for c in closers) if j != -1), default=-1)
        if end == -1:  # an unmatched opening quote: nothing to extract after it
            break
        spans.append((i + 1, end))
        i = end + 1
    return spans


def _single_spans(segment: str, offset: int) -> list[tuple[int, int]]:
    """Single-quoted spans of a segment free of double quotes; apostrophes are neither openers nor closers."""
    openers: list[int] = []
    spans: list[tuple[int, int]] = []
    n = len(segment)
    for i, ch in enumerate(segment):
        before = segment[i - 1] if i > 0 else " "
        after = segment[i + 1] if i + 1 < n else " "
        can_open = ch in _SINGLE_OPEN and not _is_word_char(before) and not after.isspace()
        can_close = ch in _SINGLE_CLOSE and not _is_word_char(after) and not before.isspace()
        if can_close and openers:
            start = openers.pop()  # pair with the nearest opener: a stray '90s before it stays unpaired
            openers.clear()
            spans.append((offset + start + 1, offset + i))
        elif can_open:
            # An apostrophe that looks like an opener ('90s, 'til) stays unpaired unless a closer follows;
            # pairing each closer with the nearest opener keeps it out of a later quote.
            openers.append(i)
    return spans


def quoted_spans(prompt: str) -> list[str]:
    """Every quoted span of ``prompt``, cleaned, in order, empty ones and repeats included."""
    prompt = _ESCAPED_QUOTE.sub(r"\1", prompt)
    doubles = _double_spans(prompt)
    spans: list[tuple[int, int]] = list(doubles)
    # Single quotes are searched only between double-quoted spans (and the quote characters themselves).
    cursor = 0
    bounds = [(s - 1, e + 1) for s, e in doubles] + [(len(prompt), len(prompt))]
    for start, end in bounds:
        segment = prompt[cursor:start]
        spans.extend(_single_spans(segment, cursor))
        cursor = end
    spans.sort()
    texts = []
    for s, e in spans:
        raw = prompt[s:e]
        if raw.strip() in _ELISIONS and prompt[s - 1] in _SINGLE_OPEN:
            continue
        texts.append(_clean(raw))
    return texts


def extract_texts(prompt: str, texts: Sequence[str] | None = None) -> list[str]:
    """The texts a prompt asks to render.

    Args:
        prompt: The user's prompt.
        texts: Explicit texts; when given (even empty) they override extraction and are only cleaned of
            surrounding whitespace and empty entries.

    Returns:
        The distinct non-empty texts in order of first appearance; ``[]`` when the prompt quotes nothing.

    Raises:
        TypeError: ``prompt`` is not a string or ``texts`` holds a non-string.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if texts is not None:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, got a single string (wrap it in a list)")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a string, got {type(t).__name__}")
        candidates = [t.strip() for t in texts]
    else:
        candidates = quoted_spans(prompt)
    return list(dict.fromkeys(t for t in candidates if t))
