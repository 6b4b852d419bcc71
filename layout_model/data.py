"""Training pairs for the planner: a caption and the ``keyword l,t,r,b`` answer a planner should write for it.

Two sources:

* the data stage's webdataset shards (:mod:`textgen.core.shards`): per triple, the training caption (else the
  caption) and the record's layout. Only the JSON members are read; images are never decoded.
* TextDiffuser-2's planner data (``layout_planner_data_5k.json``): FastChat conversations
  ``{"conversations": [{"from": "human", "value": <instruction with the caption>}, {"from": "gpt", "value":
  <answer>}]}``, or plain objects ``{"caption": ..., "layout": "<answer lines>"}``; a JSON list or JSON lines.

Pairs that cannot teach anything (no caption, no text boxes, an unreadable answer) are skipped and counted by
reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from layout_model.td2 import format_answer, parse_answer
from textgen.core.layout import Layout, LayoutError
from textgen.core.shards import TripleRecord, iter_tar, shard_paths

JSON_SUFFIXES = (".json", ".jsonl")
# The caption inside one of TextDiffuser-2's instructions: after the last "Prompt: ", before ". Keywords: [...]".
_TD2_CAPTION = re.compile(r"Prompt:\s*(?P<caption>.*?)(?:\.\s*Keywords:\s*\[.*\])?\s*$", re.S)


@dataclass(frozen=True)
class PlannerExample:
    """One training pair.

    Args:
        caption: The prompt as a user would write it.
        answer: The ``keyword l,t,r,b`` lines (0-128 grid) the planner should write.
        texts: The keywords of the answer, in order.
        source: Where it came from (``shard.tar:key`` or ``file.json:index``).
    """

    caption: str
    answer: str
    texts: tuple[str, ...]
    source: str = ""


def example_from_layout(caption: str, layout: Layout, source: str = "") -> PlannerExample | None:
    """The pair for a caption and its layout; ``None`` when either is empty."""
    caption = (caption or "").strip()
    answer = format_answer(layout)
    if not caption or not answer:
        return None
    texts = tuple(" ".join(b.text.split()) for b in layout.boxes if b.text.strip())
    return PlannerExample(caption=caption, answer=answer, texts=texts, source=source)


def iter_shard_examples(root: str | Path | Sequence[str | Path], skipped: Counter | None = None):
    """Yields the pairs of the data stage's shards under ``root`` (a folder of ``.tar``, a tar, or a list).

    Args:
        root: Shards (see :func:`textgen.core.shards.shard_paths`).
        skipped: Counts skipped records by reason, when given.

    Raises:
        FileNotFoundError: no shards at ``root``.
        ValueError: a record that is not valid JSON or misses a field (naming shard and key), or a damaged shard.
    """
    skipped = skipped if skipped is not None else Counter()
    for path in shard_paths(root):
        for key, files in iter_tar(path):
            if "json" not in files:
                continue
            where = f"{path}: {key}.json"
            try:
                data = json.loads(files["json"])
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
            record = TripleRecord.from_dict(data, source_name=where)
            caption = record.training_caption or record.caption or ""
            example = example_from_layout(caption, record.layout, source=f"{path.name}:{record.key}")
            if example is None:
                skipped["no caption" if not caption.strip() else "no text boxes"] += 1
                continue
            yield example


def _td2_item(item: object, where: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
    if "conversations" in item:
        turns = item["conversations"]
        human = next((t.get("value", "") for t in turns if t.get("from") in ("human", "user")), None)
        answer = next((t.get("value", "") for t in turns if t.get("from") in ("gpt", "assistant")), None)
        if human is None or answer is None:
            raise ValueError(f"{where}: 'conversations' needs a human and a gpt turn")
        match = _TD2_CAPTION.search(human)
        return (match["caption"] if match else human).strip(), answer
    caption = item.get("caption", item.get("prompt"))
    answer = item.get("layout", item.get("answer"))
    if not isinstance(caption, str) or not isinstance(answer, (str, list)):
        raise ValueError(f"{where}: expected 'conversations', or 'caption' and 'layout' (answer lines)")
    return caption.strip(), "\n".join(answer) if isinstance(answer, list) else answer


def iter_td2_examples(path: str | Path, skipped: Counter | None = None) -> Iterator[PlannerExample]:
    """Yields the pairs of a TextDiffuser-2 planner JSON (a list) or JSON-lines file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file and item that is not in a known shape.
    """
    skipped = skipped if skipped is not None else Counter()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        items = (
            json.loads(text)
            if path.suffix == ".json"
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from err
    if isinstance(items, dict):
        items = items.get("data", [items])
    for i, item in enumerate(items):
        caption, answer = _td2_item(item, f"{path}: item {i}")
        lines, problems = parse_answer(answer)
        if not caption or not lines or problems:
            skipped["no caption" if not caption else "unreadable answer"] += 1
            continue
        canonical = "\n".join(f"{ln.keyword} {','.join(str(round(v)) for v in ln.coords)}" for ln in lines)
        yield PlannerExample(caption, canonical, tuple(ln.keyword for ln in lines), source=f"{path.name}:{i}")


def load_examples(sources: Sequence[str | Path]) -> tuple[list[PlannerExample], Counter]:
    """All pairs of ``sources`` (shard folders/tars, or TextDiffuser-2 ``.json``/``.jsonl`` files).

    Returns:
        The pairs and the count of skipped records by reason.

    Raises:
        FileNotFoundError, ValueError: a source is missing or malformed (naming it).
    """
    skipped: Counter = Counter()
    examples: list[PlannerExample] = []
    for source in sources:
        path = Path(source)
        if path.suffix.lower() in JSON_SUFFIXES:
            examples.extend(iter_td2_examples(path, skipped))
        else:
            try:
                examples.extend(iter_shard_examples(path, skipped))
            except LayoutError as err:
                raise ValueError(f"{path}: {err}") from err
    return examples, skipped
