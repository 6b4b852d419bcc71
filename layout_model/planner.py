"""The planner interface and :func:`load_planner`, which turns ``"rule"`` or a model path into a planner."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from textgen.core.layout import Layout


@runtime_checkable
class Planner(Protocol):
    """Anything that plans layouts: :class:`~layout_model.rule.RulePlanner`, :class:`~layout_model.llm.LLMPlanner`,
    or a user's own object with these two methods."""

    name_or_path: str

    def plan(
        self, prompt: str, texts: Sequence[str] | None = None, width: int = 512, height: int = 512, seed: int = 0
    ) -> Layout:
        """One layout for ``prompt`` (its quoted texts, or ``texts``) on a ``width`` x ``height`` canvas."""
        ...

    def plan_batch(
        self,
        prompts: Sequence[str],
        texts: Sequence[Sequence[str] | None] | None = None,
        width: int = 512,
        height: int = 512,
        seed: int | Sequence[int] = 0,
    ) -> list[Layout]:
        """One layout per prompt."""
        ...


def load_planner(spec: str | Path | Planner = "rule", **kwargs: Any) -> Planner:
    """A planner from a spec.

    Args:
        spec: ``"rule"`` for the rule planner (no model); a folder or hub id of a causal language model for
            :class:`~layout_model.llm.LLMPlanner`; or a planner object, returned as is.
        **kwargs: Passed to :class:`~layout_model.rule.RulePlanner` (``options=``) or to
            :meth:`LLMPlanner.from_pretrained <layout_model.llm.LLMPlanner.from_pretrained>`.

    Raises:
        FileNotFoundError: ``spec`` looks like a path that does not exist.
        ValueError: ``spec`` is empty.
    """
    if not isinstance(spec, (str, Path)):
        if isinstance(spec, Planner):
            return spec
        raise TypeError(
            f"planner must be 'rule', a model path/hub id, or an object with plan(), got {type(spec).__name__}"
        )
    name = str(spec).strip()
    if not name:
        raise ValueError("planner spec is empty: expected 'rule' or a model folder / hub id")
    if name == "rule":
        from layout_model.rule import RulePlanner

        return RulePlanner(**kwargs)
    from layout_model.llm import LLMPlanner

    return LLMPlanner.from_pretrained(name, **kwargs)
