"""TextDiffuser-2's planner language: the instruction a language model reads and the lines it writes.

The model reads an instruction ending in the caption and answers one line per text, ``keyword l,t,r,b``, with
integers on a 0-128 grid of the canvas. :func:`build_prompt` writes the instruction (TextDiffuser-2's own by
default, so its fine-tuned planner works unchanged; any template with ``{prompt}`` for small models);
:func:`format_answer` writes the answer a planner is trained on; :func:`parse_answer` reads whatever a model
wrote, leniently, and says what it could not read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from textgen.core.layout import Layout

# TextDiffuser-2's instructions, word for word (its planner was fine-tuned on them); the caption follows. The
# second one also lists the keywords, as a Python list, when the user gives them.
_TD2_HEAD = (
    "Given a prompt that will be used to generate an image, plan the layout of visual text for the image. "
    "The size of the image is 128x128. Therefore, all properties of the positions should not exceed 128, "
    "including the coordinates of top, left, right, and bottom. "
)
_TD2_TAIL = (
    "You dont need to specify the details of font styles. At each line, the format should be keyword left, "
    "top, right, bottom. So let us begin. Prompt: {prompt}"
)
TD2_TEMPLATE = _TD2_HEAD + "All keywords are included in the caption. " + _TD2_TAIL
TD2_KEYWORDS_TEMPLATE = (
    _TD2_HEAD + "In addition, we also provide all keywords at random order for reference. " + _TD2_TAIL
) + ". Keywords: {keywords}"
# A short template for small models trained from scratch: every character of the instruction costs compute.
SHORT_TEMPLATE = "{prompt}\n"

# ``keyword l,t,r,b`` with tolerance: optional quotes/colon/brackets around, spaces after commas, signed or
# decimal numbers (rounded), and an optional 5th number (TextDiffuser-2's angle extension), ignored.
_NUM = r"[-+]?\d+(?:\.\d+)?"
_LINE = re.compile(
    rf"^\s*(?:[-*•]\s+|\d+[.)]\s+)?(?P<keyword>.*?)\s*[:=]?\s*[\[(]?\s*"
    rf"(?P<l>{_NUM})\s*,\s*(?P<t>{_NUM})\s*,\s*(?P<r>{_NUM})\s*,\s*(?P<b>{_NUM})(?:\s*,\s*{_NUM})?\s*[\])]?\s*[.;]?\s*$"
)
_QUOTES = "\"'“”‘’「」『』《》`"


@dataclass(frozen=True)
class ParsedLine:
    """One line a model wrote: its keyword and coordinates on the grid (not yet clipped or ordered)."""

    keyword: str
    coords: tuple[float, float, float, float]
    lineno: int


def build_prompt(caption: str, template: str = TD2_TEMPLATE, keywords: Sequence[str] | None = None) -> str:
    """The instruction for ``caption``.

    Args:
        caption: The user's prompt.
        template: A string with a ``{prompt}`` field and optionally a ``{keywords}`` field.
        keywords: The texts to place, written into ``{keywords}`` as TextDiffuser-2 does (a Python list,
            ``['BLUE', 'NOTE']``); ignored by a template without that field.

    Raises:
        ValueError: the template has no ``{prompt}`` field.
    """
    if "{prompt}" not in template:
        raise ValueError(f"prompt template must contain '{{prompt}}', got {template!r}")
    # Plain replacement, not str.format: captions and templates may contain braces.
    return template.replace("{keywords}", str(list(keywords or []))).replace("{prompt}", caption)


def format_answer(layout: Layout) -> str:
    """The answer a planner is trained to write for ``layout``: one ``keyword l,t,r,b`` line per box.

    Line breaks inside a text become spaces (a line is one box).
    """
    flat = Layout(
        width=layout.width,
        height=layout.height,
        boxes=tuple(type(b)(text=" ".join(b.text.split()), box=b.box) for b in layout.boxes if b.text.strip()),
    )
    return flat.to_td2()


def parse_answer(text: str) -> tuple[list[ParsedLine], list[str]]:
    """Reads a model's answer leniently.

    Accepts TextDiffuser-2's ``keyword l,t,r,b`` and the variations models produce (``keyword: [l, t, r, b]``,
    quoted keywords, list bullets, decimals, a 5th angle value). Stops at nothing: every line is tried.

    Returns:
        The readable lines and one message per line that could not be read (``"line 2: ..."``).
    """
    parsed: list[ParsedLine] = []
    problems: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(f"line {lineno}: expected 'keyword l,t,r,b', got {line[:80]!r}")
            continue
        keyword = match["keyword"].strip().strip(_QUOTES).strip()
        if not keyword:
            problems.append(f"line {lineno}: no keyword before the coordinates in {line[:80]!r}")
            continue
        coords = tuple(float(match[k]) for k in ("l", "t", "r", "b"))
        parsed.append(ParsedLine(keyword=keyword, coords=coords, lineno=lineno))
    return parsed, problems
