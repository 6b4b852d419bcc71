"""Layout planners: a prompt becomes text boxes (a :class:`textgen.core.layout.Layout`).

* :func:`extract_texts`: the texts a prompt quotes (straight, curly, single and CJK quotes).
* :class:`RulePlanner`: designer-like layouts with no model, the default (``load_planner("rule")``).
* :class:`LLMPlanner`: any causal language model writing TextDiffuser-2's ``keyword l,t,r,b`` lines, repaired
  into a valid layout, with the rule planner as fallback (``load_planner("path/or/hub-id")``).
* :mod:`layout_model.train`: fine-tunes a model into a planner (``textgen train-planner``).

The LLM planner and training import torch and transformers only when used.
"""

from typing import Any

from layout_model.planner import Planner, load_planner
from layout_model.repair import RepairOptions, RepairReport, repair_answer
from layout_model.rule import RuleOptions, RulePlanner
from layout_model.text import extract_texts

__all__ = [
    "GenerationOptions",
    "LLMPlanner",
    "Planner",
    "PlannerConfig",
    "RepairOptions",
    "RepairReport",
    "RuleOptions",
    "RulePlanner",
    "extract_texts",
    "load_planner",
    "repair_answer",
]


def __getattr__(name: str) -> Any:
    # The LLM planner's module is light, but keep `import layout_model` free of it until it is asked for.
    if name in ("LLMPlanner", "GenerationOptions", "PlannerConfig"):
        from layout_model import llm

        return getattr(llm, name)
    raise AttributeError(f"module 'layout_model' has no attribute {name!r}")
