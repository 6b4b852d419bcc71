"""Constrained decoding: the model may only write ``keyword l,t,r,b`` lines of the expected keywords.

:class:`TD2Grammar` decides whether a text is the beginning of a valid answer: complete lines, each an expected
keyword not used before, a space, four integers in ``0..grid`` without leading zeros, separated by commas; then
a newline or the end. :class:`TD2LogitsProcessor` applies it during ``generate``: at every step each row may
only choose tokens that keep its answer valid, and the end-of-sequence token only once every keyword is placed.
The model still chooses the order of the keywords and every coordinate.

A row whose tokenizer cannot spell what the grammar needs (no allowed token at all, e.g. a keyword only
reachable through partial UTF-8 byte tokens) is released from the constraint rather than stalled; repair
handles its answer like any other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from textgen.core.layout import TD2_GRID

_DIGITS = frozenset("0123456789")


class TD2Grammar:
    """Prefix checks for answers placing ``keywords`` on a ``grid``.

    Args:
        keywords: The texts that must each appear on exactly one line.
        grid: Largest coordinate value.
    """

    def __init__(self, keywords: Sequence[str], grid: int = TD2_GRID):
        self.keywords = tuple(dict.fromkeys(" ".join(k.split()) for k in keywords if k.strip()))
        self.grid = grid
        self._number = re.compile(r"0|[1-9]\d*")

    # --------------------------------------------------------------------------------------------- numbers
    def _number_ok(self, part: str, complete: bool) -> bool:
        if not part:
            return not complete
        if not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            return False
        return int(part) <= self.grid

    def _coords_ok(self, coords: str, complete: bool) -> bool:
        parts = coords.split(",")
        if len(parts) > 4 or (complete and len(parts) != 4):
            return False
        return all(self._number_ok(p, complete=complete or i < len(parts) - 1) for i, p in enumerate(parts))

    # ------------------------------------------------------------------------------------------------ lines
    def _line_keyword(self, line: str, remaining: Sequence[str]) -> str | None:
        """The keyword of a complete line, or ``None`` when the line is not a valid complete line."""
        for k in remaining:
            if line.startswith(k + " ") and self._coords_ok(line[len(k) + 1 :], complete=True):
                return k
        return None

    def _partial_ok(self, partial: str, remaining: Sequence[str]) -> bool:
        if not partial:
            return True
        for k in remaining:
            if k.startswith(partial):
                return True
            if partial.startswith(k + " ") and self._coords_ok(partial[len(k) + 1 :], complete=False):
                return True
        return False

    def remaining_after(self, text: str) -> tuple[tuple[str, ...], str] | None:
        """Keywords still to place after the complete lines of ``text``, and the partial last line.

        Returns ``None`` when a complete line is invalid.
        """
        *done, partial = text.split("\n")
        remaining = list(self.keywords)
        for line in done:
            k = self._line_keyword(line, remaining)
            if k is None:
                return None
            remaining.remove(k)
        return tuple(remaining), partial

    def allows(self, text: str) -> bool:
        """Whether ``text`` can be continued into a valid answer."""
        state = self.remaining_after(text)
        if state is None:
            return False
        remaining, partial = state
        return self._partial_ok(partial, remaining) if remaining else partial == ""

    def can_end(self, text: str) -> bool:
        """Whether ``text`` is a complete answer (every keyword placed)."""
        state = self.remaining_after(text)
        if state is None:
            return False
        remaining, partial = state
        if not remaining:
            return partial == ""
        return len(remaining) == 1 and self._line_keyword(partial, remaining) is not None

    def allows_tail(self, remaining: tuple[str, ...], partial: str) -> bool:
        """:meth:`allows` for a text already split by :meth:`remaining_after` (the fast path)."""
        if "\n" not in partial:
            return self._partial_ok(partial, remaining) if remaining else partial == ""
        line, rest = partial.split("\n", 1)
        k = self._line_keyword(line, remaining)
        if k is None:
            return False
        left = list(remaining)
        left.remove(k)
        return self.allows_tail(tuple(left), rest)


class TokenTable:
    """The surface string of every token of a tokenizer, as it reads in the middle of a text.

    Args:
        tokenizer: A Hugging Face tokenizer.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        vocab_size = len(tokenizer)
        anchor_ids = tokenizer.encode("a", add_special_tokens=False)
        anchor = tokenizer.decode(anchor_ids, clean_up_tokenization_spaces=False)
        strings: list[str | None] = []
        for i in range(vocab_size):
            if i in special:
                strings.append(None)
                continue
            # Decoding after an anchor keeps the leading space SentencePiece and byte-level BPE attach to tokens.
            s = tokenizer.decode(anchor_ids + [i], clean_up_tokenization_spaces=False)
            piece = s[len(anchor) :] if s.startswith(anchor) else tokenizer.decode([i])
            strings.append(None if (not piece or "\ufffd" in piece) else piece)
        self.strings = strings
        by_first: dict[str, list[int]] = {}
        for i, s in enumerate(strings):
            if s:
                by_first.setdefault(s[0], []).append(i)
        self.by_first = by_first

    def text(self, ids: Sequence[int]) -> str:
        return "".join(self.strings[i] or "" for i in ids)


@functools.lru_cache(maxsize=8)
def _table_for(tokenizer) -> TokenTable:
    return TokenTable(tokenizer)


class TD2LogitsProcessor:
    """A ``transformers`` logits processor enforcing :class:`TD2Grammar` per row of a batch.

    Args:
        tokenizer: The model's tokenizer.
        keywords: Per row, the keywords that row must place.
        prompt_length: Length of the (padded) prompt; generated tokens follow it.
        eos_token_id: Token(s) that end an answer.
        grid: Largest coordinate value.
    """

    def __init__(
        self,
        tokenizer,
        keywords: Sequence[Sequence[str]],
        prompt_length: int,
        eos_token_id: int | Sequence[int],
        grid: int = TD2_GRID,
    ):
        self.table = _table_for(tokenizer)
        self.grammars = [TD2Grammar(k, grid) for k in keywords]
        self.prompt_length = prompt_length
        self.eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
        self.released = [not g.keywords for g in self.grammars]  # rows with nothing to constrain run free

    def allowed_tokens(self, row: int, generated: Sequence[int]) -> list[int] | None:
        """Token ids row ``row`` may produce next; ``None`` when the row is unconstrained."""
        if self.released[row]:
            return None
        grammar = self.grammars[row]
        text = self.table.text(generated)
        state = grammar.remaining_after(text)
        if state is None:  # cannot happen while constrained; be safe
            self.released[row] = True
            return None
        remaining, partial = state
        allowed: list[int] = []
        for first, ids in self.table.by_first.items():
            if not grammar.allows_tail(remaining, partial + first):
                continue
            allowed.extend(i for i in ids if grammar.allows_tail(remaining, partial + self.table.strings[i]))
        if grammar.can_end(text):
            allowed.extend(self.eos)
        if not allowed:
            self.released[row] = True
            return None
        return allowed

    def __call__(self, input_ids, scores):
        import torch

        masked = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :].tolist()
            if any(t in self.eos for t in generated):  # a finished row: generate pads it, leave it alone
                masked[row] = scores[row]
                continue
            allowed = self.allowed_tokens(row, generated)
            if allowed is None:
                masked[row] = scores[row]
            else:
                index = torch.tensor(allowed, dtype=torch.long, device=scores.device)
                masked[row, index] = scores[row, index]
        return masked
