"""The LLM planner: any causal language model writes TextDiffuser-2 layout lines, which are repaired into a layout.

``LLMPlanner.from_pretrained(name_or_path)`` loads a model folder or hub id with ``transformers`` (safetensors
weights only, no remote code unless asked), plus ``planner_config.json`` when the folder has one (written by
:mod:`layout_model.train`: the prompt template the model was trained on). Without it the planner speaks
TextDiffuser-2's own instruction, so TextDiffuser-2's fine-tuned Vicuna planner works as is. A folder holding a
LoRA adapter (``adapter_config.json``) is loaded on its base model with ``peft``.

Planning a batch: extract the texts of every prompt, build the instructions (through the tokenizer's chat
template when it has one), generate greedily (optionally constrained to the expected keywords, see
:mod:`layout_model.constrained`), then repair each answer (:mod:`layout_model.repair`). An answer that cannot
be used is replaced by the rule planner's layout and the reason is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from layout_model.repair import RepairOptions, RepairReport, repair_answer
from layout_model.rule import RulePlanner, _check_size
from layout_model.td2 import TD2_TEMPLATE, build_prompt
from layout_model.text import extract_texts
from textgen.core.layout import TD2_GRID, Layout

logger = logging.getLogger(__name__)

PLANNER_CONFIG_NAME = "planner_config.json"


@dataclass(frozen=True)
class PlannerConfig:
    """How a model is spoken to; saved as ``planner_config.json`` beside a trained planner.

    Args:
        prompt_template: Instruction with a ``{prompt}`` field (and optionally ``{keywords}``, filled with the
            expected texts as a Python list). Default: TextDiffuser-2's.
        use_chat_template: Wrap the instruction in the tokenizer's chat template: ``None`` when it has one.
        grid: Coordinate grid of the answers.
        max_new_tokens: Longest answer.
    """

    prompt_template: str = TD2_TEMPLATE
    use_chat_template: bool | None = None
    grid: int = TD2_GRID
    max_new_tokens: int = 256

    @classmethod
    def load(cls, folder: str | Path) -> PlannerConfig:
        """Reads ``planner_config.json`` from ``folder``; the defaults when there is none."""
        path = Path(folder) / PLANNER_CONFIG_NAME
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from err
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**data)

    def save(self, folder: str | Path) -> None:
        path = Path(folder) / PLANNER_CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding settings.

    Args:
        constrained: Allow only ``keyword l,t,r,b`` lines of the expected keywords (see
            :mod:`layout_model.constrained`). Off, the model writes freely and repair cleans up.
        do_sample: Sample instead of greedy decoding (the plan seed seeds the sampler).
        temperature: Sampling temperature.
        top_p: Nucleus sampling mass.
        batch_size: Prompts per ``generate`` call.
        free_keywords: For a prompt that quotes nothing, let the model choose the texts (TextDiffuser-2's
            behaviour); off, such a prompt gets an empty layout without running the model.
    """

    constrained: bool = True
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    batch_size: int = 8
    free_keywords: bool = False


@dataclass
class PlanOutcome:
    """One planned layout and how it came about (``report`` is ``None`` when the model was not needed)."""

    layout: Layout
    report: RepairReport | None = None
    prompt_text: str | None = None

    @property
    def used_model(self) -> bool:
        return self.report is not None and self.report.used_model


def encode_prompt(tokenizer, instruction: str, use_chat_template: bool | None) -> list[int]:
    """Token ids of the instruction as the model reads it, ready for the answer to follow.

    With a chat template (``use_chat_template`` ``True``, or ``None`` and the tokenizer has one) the instruction
    is the user turn and the assistant turn is opened; otherwise the tokenizer adds its usual special tokens.
    """
    if _chat(tokenizer, use_chat_template):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(instruction)["input_ids"]


def _chat(tokenizer, use_chat_template: bool | None) -> bool:
    has = bool(getattr(tokenizer, "chat_template", None))
    if use_chat_template and not has:
        raise ValueError("use_chat_template=True but the tokenizer has no chat template")
    return has if use_chat_template is None else bool(use_chat_template)


class LLMPlanner:
    """Plans layouts with a causal language model.

    Args:
        model: A ``transformers`` causal LM (in eval mode on its device).
        tokenizer: Its tokenizer.
        config: Prompt format (see :class:`PlannerConfig`).
        generation: Decoding settings.
        repair: Repair thresholds.
        rule: The planner used for texts the model leaves out and for unusable answers.
        name_or_path: Where the model came from (for reports).
    """

    def __init__(
        self,
        model,
        tokenizer,
        config: PlannerConfig | None = None,
        generation: GenerationOptions | None = None,
        repair: RepairOptions | None = None,
        rule: RulePlanner | None = None,
        name_or_path: str = "custom",
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or PlannerConfig()
        self.generation = generation or GenerationOptions()
        self.repair = repair or RepairOptions()
        self.rule = rule or RulePlanner()
        self.name_or_path = name_or_path
        if tokenizer.pad_token_id is None:  # batching needs one; the EOS token is the usual stand-in
            tokenizer.pad_token = tokenizer.eos_token

    # ------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        trust_remote_code: bool = False,
        device: str | None = None,
        dtype: Any = None,
        local_files_only: bool = False,
        revision: str | None = None,
        generation: GenerationOptions | None = None,
        repair: RepairOptions | None = None,
        rule: RulePlanner | None = None,
        config: PlannerConfig | None = None,
    ) -> LLMPlanner:
        """Loads a planner from a folder or hub id.

        Args:
            name_or_path: Model folder (a trained planner, a merged model, or a LoRA adapter folder) or hub id.
            trust_remote_code: Run the model repository's own code (off unless you trust it).
            device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
            dtype: Weight dtype, e.g. ``torch.bfloat16`` (default: full precision).
            local_files_only: Never touch the network.
            revision: Hub revision.
            generation: Decoding settings.
            repair: Repair thresholds.
            rule: Rule planner for repairs and fallbacks.
            config: Prompt format; default the folder's ``planner_config.json``, else TextDiffuser-2's.

        Raises:
            FileNotFoundError: a local path that does not exist.
            OSError: the model cannot be loaded (e.g. no safetensors weights).
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = str(name_or_path)
        local = Path(name).expanduser()
        looks_local = local.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
        if looks_local and not local.is_dir():
            raise FileNotFoundError(f"{name}: no such planner folder")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = dict(trust_remote_code=trust_remote_code, local_files_only=local_files_only, revision=revision)
        if (local / "adapter_config.json").is_file():
            try:
                from peft import AutoPeftModelForCausalLM
            except ImportError as err:
                raise ImportError(f"{name} is a LoRA adapter: pip install 'textgen[train]' (peft)") from err
            model = AutoPeftModelForCausalLM.from_pretrained(name, dtype=dtype, use_safetensors=True, **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, use_safetensors=True, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        model.to(device).eval()
        if config is None:
            config = PlannerConfig.load(local) if local.is_dir() else PlannerConfig()
        return cls(model, tokenizer, config, generation, repair, rule, name_or_path=name)

    # ------------------------------------------------------------------------------------------ planning
    def plan(
        self, prompt: str, texts: Sequence[str] | None = None, width: int = 512, height: int = 512, seed: int = 0
    ) -> Layout:
        """Plans one layout (see :meth:`plan_batch`)."""
        return self.plan_batch([prompt], [texts], width, height, seed)[0]

    def plan_batch(
        self,
        prompts: Sequence[str],
        texts: Sequence[Sequence[str] | None] | None = None,
        width: int = 512,
        height: int = 512,
        seed: int | Sequence[int] = 0,
    ) -> list[Layout]:
        """Plans a layout for each prompt; never fails on what the model writes.

        Args:
            prompts: The prompts.
            texts: Per prompt, explicit texts overriding extraction (or ``None``).
            width: Canvas width in pixels.
            height: Canvas height in pixels.
            seed: One seed, or one per prompt: seeds sampling (when enabled) and the rule planner's repairs.

        Returns:
            One layout per prompt, in order.
        """
        return [o.layout for o in self.plan_outcomes(prompts, texts, width, height, seed)]

    def plan_outcomes(
        self,
        prompts: Sequence[str],
        texts: Sequence[Sequence[str] | None] | None = None,
        width: int = 512,
        height: int = 512,
        seed: int | Sequence[int] = 0,
    ) -> list[PlanOutcome]:
        """:meth:`plan_batch` with, per prompt, the model's raw answer and what repair did with it."""
        _check_size(width, height)
        prompts = list(prompts)
        texts = list(texts) if texts is not None else [None] * len(prompts)
        seeds = [seed] * len(prompts) if isinstance(seed, int) else list(seed)
        if len(texts) != len(prompts) or len(seeds) != len(prompts):
            raise ValueError(f"plan_batch: {len(prompts)} prompts but {len(texts)} texts and {len(seeds)} seeds")

        # 1. The texts of every prompt; prompts with none need no model.
        expected = [extract_texts(p, t) for p, t in zip(prompts, texts)]
        outcomes: list[PlanOutcome | None] = [None] * len(prompts)
        todo = []
        for i, (prompt, found) in enumerate(zip(prompts, expected)):
            if found or self.generation.free_keywords:
                todo.append(i)
            else:
                outcomes[i] = PlanOutcome(Layout(width=width, height=height, caption=prompt))

        # 2. Generate in batches, 3. repair each answer or fall back to the rule planner.
        size = max(1, self.generation.batch_size)
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            keywords = [expected[i] if expected[i] else None for i in chunk]
            instructions = [self.instruction(prompts[i], keywords[j]) for j, i in enumerate(chunk)]
            answers = self.generate(instructions, keywords, seed=seeds[chunk[0]])
            for i, instruction, answer in zip(chunk, instructions, answers):
                outcomes[i] = self._finish(
                    prompts[i], expected[i] or None, answer, instruction, width, height, seeds[i]
                )
        return outcomes  # type: ignore[return-value]

    def instruction(self, prompt: str, keywords: Sequence[str] | None = None) -> str:
        """The instruction the model reads for ``prompt``."""
        return build_prompt(prompt, self.config.prompt_template, keywords)

    def generate(
        self, instructions: Sequence[str], keywords: Sequence[Sequence[str] | None], seed: int = 0
    ) -> list[str]:
        """The model's raw answers to ``instructions`` (``keywords`` per row for constrained decoding)."""
        import torch
        from transformers import LogitsProcessorList

        from layout_model.constrained import TD2LogitsProcessor

        tok = self.tokenizer
        encoded = [encode_prompt(tok, text, self.config.use_chat_template) for text in instructions]
        length = max(len(ids) for ids in encoded)
        pad = tok.pad_token_id
        # Left padding: every row's answer starts at the same position.
        input_ids = torch.tensor([[pad] * (length - len(ids)) + ids for ids in encoded])
        attention = torch.tensor([[0] * (length - len(ids)) + [1] * len(ids) for ids in encoded])
        device = next(self.model.parameters()).device
        eos = self._eos_ids()
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self._max_new_tokens(keywords),
            do_sample=self.generation.do_sample,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        if self.generation.do_sample:
            kwargs.update(temperature=self.generation.temperature, top_p=self.generation.top_p)
            torch.manual_seed(seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.generation.constrained and any(keywords):
            processor = TD2LogitsProcessor(tok, [k or [] for k in keywords], length, eos, self.config.grid)
            kwargs["logits_processor"] = LogitsProcessorList([processor])
        with torch.no_grad():
            output = self.model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs)
        return [tok.decode(row[length:], skip_special_tokens=True) for row in output.tolist()]

    # ----------------------------------------------------------------------------------------- internals
    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        if ids is None:
            ids = self.tokenizer.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if not ids:
            raise ValueError(f"{self.name_or_path}: the model and tokenizer define no end-of-sequence token")
        return ids

    def _max_new_tokens(self, keywords: Sequence[Sequence[str] | None]) -> int:
        # Each line costs its keyword (at worst a token per character) plus at most 17 for " 128,128,128,128\n".
        longest = max((sum(len(k) + 18 for k in kws) for kws in keywords if kws), default=0)
        return min(self.config.max_new_tokens, longest + 8) if longest else self.config.max_new_tokens

    def _finish(self, prompt, expected, answer, instruction, width, height, seed) -> PlanOutcome:
        layout, report = repair_answer(
            answer,
            expected,
            width,
            height,
            caption=prompt,
            rule=self.rule,
            seed=seed,
            grid=self.config.grid,
            options=self.repair,
        )
        if layout is None:
            logger.warning(
                "layout planner %s: unusable answer for %r: %s; using the rule planner",
                self.name_or_path,
                prompt[:80],
                report.fallback,
            )
            layout = self.rule.plan(prompt, expected, width, height, seed)
        elif report.repairs:
            logger.debug(
                "layout planner %s: repaired the answer for %r: %s", self.name_or_path, prompt[:80], report.repairs
            )
        return PlanOutcome(layout=layout, report=report, prompt_text=instruction)
