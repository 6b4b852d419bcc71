"""Fine-tune a causal language model into a layout planner: caption -> ``keyword l,t,r,b`` lines.

Supervised fine-tuning on pairs from the data stage's shards or TextDiffuser-2's planner JSON
(:mod:`layout_model.data`). The loss covers only the answer tokens (and the end-of-sequence token), never the
instruction. Full fine-tuning or LoRA (``--use_lora``, merged into the weights on save unless
``--no-merge_lora``). ``accelerate`` places the model and runs mixed precision (``--mixed_precision bf16``);
``accelerate launch`` scales it to several devices. Every ``--checkpointing_steps`` the full training state is
saved to ``OUTPUT/checkpoint-STEP``; ``--resume_from_checkpoint latest`` continues from the newest one, on the
same batches it would have seen. The output folder loads with ``LLMPlanner.from_pretrained(OUTPUT)``
(safetensors weights, tokenizer and ``planner_config.json``).

GPU recipe (TextDiffuser-2's setting, a 7B model)::

    accelerate launch -m layout_model.train --model_name_or_path lmsys/vicuna-7b-v1.5 \\
        --train_data layout_planner_data_5k.json --output_dir planner --use_lora --mixed_precision bf16 \\
        --learning_rate 2e-4 --num_train_epochs 6 --train_batch_size 8

CPU recipe (a tiny model from :mod:`layout_model.tiny`, synthetic shards)::

    python -m layout_model.tiny tiny-base
    python -m layout_model.train --model_name_or_path tiny-base --train_data shards/ --output_dir tiny-planner \\
        --prompt_template short --learning_rate 3e-3 --train_batch_size 16 --max_train_steps 400
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layout_model.data import PlannerExample, load_examples
from layout_model.td2 import SHORT_TEMPLATE, TD2_KEYWORDS_TEMPLATE, TD2_TEMPLATE, build_prompt
from textgen.core.cliargs import add_dataclass_arguments, option

logger = logging.getLogger(__name__)

TEMPLATES = {"td2": TD2_TEMPLATE, "td2-keywords": TD2_KEYWORDS_TEMPLATE, "short": SHORT_TEMPLATE}


@dataclass
class ModelArguments:
    """Which model to fine-tune, and how."""

    model_name_or_path: str = option("base model: folder or hub id (safetensors weights)", default="")
    tokenizer_name_or_path: str | None = option("tokenizer, when not beside the model", default=None)
    trust_remote_code: bool = option(
        "run the model repository's own code (only for repositories you trust)", default=False
    )
    use_lora: bool = option("train a LoRA adapter instead of every weight", default=False)
    lora_rank: int = option("LoRA rank", default=16)
    lora_alpha: int = option("LoRA scaling numerator", default=32)
    lora_dropout: float = option("dropout on the LoRA path", default=0.05)
    lora_target_modules: str = option("comma-separated module names, or 'all-linear'", default="all-linear")
    merge_lora: bool = option("merge the adapter into the weights on save (a plain model folder)", default=True)
    gradient_checkpointing: bool = option("trade compute for memory", default=False)


@dataclass
class DataArguments:
    """What to train on and how prompts are written."""

    train_data: list[str] = option("shard folders/tars of the data stage, or TextDiffuser-2 .json/.jsonl", default=[])
    prompt_template: str = option(
        "instruction around the caption: 'td2' (TextDiffuser-2's), 'td2-keywords', 'short' (for tiny models), or a "
        "string with {prompt} (and optionally {keywords})",
        default="td2",
    )
    use_chat_template: bool | None = option(
        "wrap instructions in the tokenizer's chat template (default: if it has one)", default=None
    )
    max_length: int = option("longest instruction + answer in tokens; longer pairs are skipped", default=1024)
    eval_fraction: float = option("fraction of pairs held out for validation", default=0.05)
    max_eval_samples: int = option("held-out pairs planned at each validation", default=32)


@dataclass
class TrainingArguments:
    """Optimisation, devices, checkpoints."""

    output_dir: str = option("where the trained planner and checkpoints go", default="")
    seed: int = option("seed of initialisation, shuffling and the held-out split", default=0)
    learning_rate: float = option(
        "peak learning rate (2e-5 full / 2e-4 LoRA for 7B; 3e-3 for a tiny model)", default=2e-5
    )
    weight_decay: float = option("AdamW weight decay", default=0.0)
    adam_beta2: float = option("AdamW beta2", default=0.999)
    train_batch_size: int = option("pairs per device per step", default=8)
    gradient_accumulation_steps: int = option("micro-batches per optimizer step", default=1)
    num_train_epochs: int = option("passes over the training pairs (unless --max_train_steps)", default=3)
    max_train_steps: int | None = option("total optimizer steps; overrides --num_train_epochs", default=None)
    max_train_time: float | None = option("stop (and save) after this many seconds", default=None)
    lr_scheduler: str = option(
        "transformers scheduler name: cosine, linear, constant_with_warmup, ...", default="cosine"
    )
    lr_warmup_steps: int = option("linear warm-up steps", default=0)
    max_grad_norm: float = option("gradient clipping", default=1.0)
    mixed_precision: str = option("'no', 'fp16' or 'bf16' (accelerate)", default="no")
    cpu: bool = option("train on the CPU even when a GPU is present", default=False)
    checkpointing_steps: int | None = option("save the full training state every N steps", default=500)
    checkpoints_total_limit: int | None = option("keep only the newest N checkpoints", default=2)
    resume_from_checkpoint: str | None = option("'latest' or a checkpoint folder", default=None)
    logging_steps: int = option("log the loss every N steps", default=10)
    validation_steps: int | None = option("plan the held-out pairs every N steps (and at the end)", default=None)
    report_to: str | None = option("accelerate tracker, e.g. 'tensorboard'", default=None)


ARGUMENT_GROUPS = (ModelArguments, DataArguments, TrainingArguments)
REQUIRED = {"model_name_or_path", "train_data", "output_dir"}


# ------------------------------------------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layout_model.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options (also those of ``textgen train-planner``)."""
    for cls in ARGUMENT_GROUPS:
        add_dataclass_arguments(parser, cls, required=REQUIRED, title=cls.__name__)


def split_arguments(args: argparse.Namespace) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    values = vars(args)
    return tuple(cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)}) for cls in ARGUMENT_GROUPS)


def parse_args(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    return split_arguments(build_parser().parse_args(argv))


def resolve_template(name: str) -> str:
    """A template by name (``td2``, ``td2-keywords``, ``short``) or the string itself."""
    template = TEMPLATES.get(name, name)
    if "{prompt}" not in template:
        raise ValueError(
            f"--prompt_template: expected one of {sorted(TEMPLATES)} or a string with {{prompt}}, got {name!r}"
        )
    return template.replace("\\n", "\n")


# ------------------------------------------------------------------------------------------------------ data
@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]


def tokenize_example(
    tokenizer, example: PlannerExample, template: str, use_chat_template: bool | None, eos_id: int, rng: random.Random
) -> Tokenized:
    """Instruction tokens (label -100, not learned) followed by answer tokens and EOS (learned)."""
    from layout_model.llm import encode_prompt

    keywords = list(example.texts)
    rng.shuffle(keywords)  # TextDiffuser-2 lists keywords "at random order"
    instruction = build_prompt(example.caption, template, keywords)
    prompt_ids = encode_prompt(tokenizer, instruction, use_chat_template)
    answer_ids = tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [eos_id]
    return Tokenized(prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids)


class _Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[Tokenized]) -> dict[str, Any]:
        import torch

        length = max(len(b.input_ids) for b in batch)
        ids = [b.input_ids + [self.pad_id] * (length - len(b.input_ids)) for b in batch]
        labels = [b.labels + [-100] * (length - len(b.labels)) for b in batch]
        mask = [[1] * len(b.input_ids) + [0] * (length - len(b.input_ids)) for b in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


class _EpochSampler:
    """A permutation of the dataset seeded by ``seed + epoch``: the same batches on a resumed run."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = list(range(self.n))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return iter(order)

    def __len__(self) -> int:
        return self.n


# ---------------------------------------------------------------------------------------------- checkpoints
def _checkpoints(output_dir: Path) -> list[Path]:
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _resolve_resume(value: str | None, output_dir: Path) -> Path | None:
    if not value:
        return None
    if value == "latest":
        found = _checkpoints(output_dir)
        if not found:
            logger.info("no checkpoint in %s: starting from scratch", output_dir)
            return None
        return found[-1]
    path = Path(value)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {value}: not a checkpoint folder (no trainer_state.json)")
    return path


def _prune(output_dir: Path, limit: int | None) -> None:
    if limit is None:
        return
    for old in _checkpoints(output_dir)[: max(0, len(_checkpoints(output_dir)) - limit)]:
        shutil.rmtree(old)


# ----------------------------------------------------------------------------------------------------- main
def train(model_args: ModelArguments, data_args: DataArguments, train_args: TrainingArguments) -> dict[str, Any]:
    """Runs the fine-tuning; returns a summary (also written to ``OUTPUT/train_summary.json``)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    from layout_model.llm import PlannerConfig

    # 1. Check inputs before anything heavy.
    template = resolve_template(data_args.prompt_template)
    if not data_args.train_data:
        raise ValueError("--train_data: give at least one shard folder, tar or TextDiffuser-2 JSON file")
    if not 0 <= data_args.eval_fraction < 1:
        raise ValueError(f"--eval_fraction must be in [0, 1), got {data_args.eval_fraction}")
    output_dir = Path(train_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    accelerator = Accelerator(
        mixed_precision=train_args.mixed_precision,
        gradient_accumulation_steps=train_args.gradient_accumulation_steps,
        cpu=train_args.cpu,
        log_with=train_args.report_to,
        project_dir=str(output_dir),
    )
    set_seed(train_args.seed)

    # 2. Data: pairs, a held-out split, tokens.
    examples, skipped = load_examples(data_args.train_data)
    if not examples:
        raise ValueError(
            f"--train_data {data_args.train_data}: no usable caption/layout pairs (skipped: {dict(skipped)})"
        )
    order = list(range(len(examples)))
    random.Random(train_args.seed).shuffle(order)
    n_eval = int(len(examples) * data_args.eval_fraction)
    eval_examples = [examples[i] for i in order[:n_eval]][: data_args.max_eval_samples]
    train_examples = [examples[i] for i in order[n_eval:]]

    # 3. Model and tokenizer.
    load_kwargs = dict(trust_remote_code=model_args.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name_or_path or model_args.model_name_or_path, **load_kwargs
    )
    model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, use_safetensors=True, **load_kwargs)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos_id = model.generation_config.eos_token_id
    eos_id = eos_id[0] if isinstance(eos_id, list) else eos_id
    eos_id = tokenizer.eos_token_id if eos_id is None else eos_id
    if model_args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if model_args.use_lora:
        from peft import LoraConfig, get_peft_model

        targets = model_args.lora_target_modules
        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=model_args.lora_rank,
                lora_alpha=model_args.lora_alpha,
                lora_dropout=model_args.lora_dropout,
                target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
            ),
        )
        if model_args.gradient_checkpointing:
            model.enable_input_require_grads()  # frozen embeddings would cut the gradient through checkpoints

    rng = random.Random(train_args.seed)
    tokenized, too_long = [], 0
    for ex in train_examples:
        item = tokenize_example(tokenizer, ex, template, data_args.use_chat_template, eos_id, rng)
        if len(item.input_ids) > data_args.max_length:
            too_long += 1
            continue
        tokenized.append(item)
    if too_long:
        skipped[f"longer than --max_length {data_args.max_length}"] += too_long
    if not tokenized:
        raise ValueError(f"no training pair fits --max_length {data_args.max_length}")

    sampler = _EpochSampler(len(tokenized), train_args.seed)
    loader = torch.utils.data.DataLoader(
        tokenized,
        batch_size=train_args.train_batch_size,
        sampler=sampler,
        collate_fn=_Collator(tokenizer.pad_token_id),
    )
    steps_per_epoch = math.ceil(len(loader) / train_args.gradient_accumulation_steps)
    max_steps = train_args.max_train_steps or steps_per_epoch * train_args.num_train_epochs
    epochs = math.ceil(max_steps / steps_per_epoch)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=train_args.learning_rate, weight_decay=train_args.weight_decay, betas=(0.9, train_args.adam_beta2)
    )
    scheduler = get_scheduler(
        train_args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=train_args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=max_steps * accelerator.num_processes,
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if train_args.report_to:
        accelerator.init_trackers("layout_planner")

    # 4. Resume.
    global_step, first_epoch, skip_batches = 0, 0, 0
    resume = _resolve_resume(train_args.resume_from_checkpoint, output_dir)
    if resume is not None:
        accelerator.load_state(str(resume))
        state = json.loads((resume / "trainer_state.json").read_text())
        global_step = int(state["global_step"])
        first_epoch = global_step // steps_per_epoch
        skip_batches = (global_step % steps_per_epoch) * train_args.gradient_accumulation_steps
        accelerator.print(f"resumed from {resume} at step {global_step}")

    def save_checkpoint() -> None:
        path = output_dir / f"checkpoint-{global_step}"
        accelerator.save_state(str(path))
        if accelerator.is_main_process:
            (path / "trainer_state.json").write_text(json.dumps({"global_step": global_step}) + "\n")
            _prune(output_dir, train_args.checkpoints_total_limit)

    # 5. Train.
    accelerator.print(
        f"training on {len(tokenized)} pairs ({sum(skipped.values())} skipped: {dict(skipped)}), {len(eval_examples)} "
        f"held out; {max_steps} steps of {train_args.train_batch_size * train_args.gradient_accumulation_steps} pairs"
    )
    start = time.monotonic()
    history: list[dict[str, float]] = []
    validations: list[dict[str, Any]] = []
    running, count = 0.0, 0
    stopped_early = False
    model.train()
    for epoch in range(first_epoch, epochs):
        sampler.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip_batches) if skip_batches else loader
        skip_batches = 0
        for batch in batches:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and train_args.max_grad_norm:
                    accelerator.clip_grad_norm_(params, train_args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            running += loss.detach().float().item()
            count += 1
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            if global_step % train_args.logging_steps == 0 or global_step == max_steps:
                entry = {"step": global_step, "loss": running / count, "lr": scheduler.get_last_lr()[0]}
                history.append(entry)
                accelerator.log({"train/loss": entry["loss"], "train/lr": entry["lr"]}, step=global_step)
                accelerator.print(f"step {global_step}/{max_steps} loss {entry['loss']:.4f} lr {entry['lr']:.2e}")
                running, count = 0.0, 0
            if train_args.checkpointing_steps and global_step % train_args.checkpointing_steps == 0:
                save_checkpoint()
            if train_args.validation_steps and global_step % train_args.validation_steps == 0 and eval_examples:
                validations.append(
                    _validate(accelerator, model, tokenizer, template, data_args, eval_examples, global_step)
                )
                model.train()
            out_of_time = train_args.max_train_time and time.monotonic() - start > train_args.max_train_time
            if global_step >= max_steps or out_of_time:
                stopped_early = bool(out_of_time) and global_step < max_steps
                break
        if global_step >= max_steps or stopped_early:
            break

    # 6. Save the planner (and the state, so a longer run can resume).
    accelerator.wait_for_everyone()
    if train_args.checkpointing_steps and not (output_dir / f"checkpoint-{global_step}").exists():
        save_checkpoint()
    if eval_examples:
        validations.append(_validate(accelerator, model, tokenizer, template, data_args, eval_examples, global_step))
    summary: dict[str, Any] = {
        "global_step": global_step,
        "max_steps": max_steps,
        "stopped_by_time": stopped_early,
        "seconds": round(time.monotonic() - start, 1),
        "train_pairs": len(tokenized),
        "skipped": dict(skipped),
        "history": history,
        "validation": validations,
    }
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if model_args.use_lora and model_args.merge_lora:
            final = final.merge_and_unload()
        final.save_pretrained(output_dir, safe_serialization=True)
        tokenizer.save_pretrained(output_dir)
        PlannerConfig(prompt_template=template, use_chat_template=data_args.use_chat_template).save(output_dir)
        (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        accelerator.print(f"saved the planner to {output_dir}")
    accelerator.end_training()
    return summary


def _validate(accelerator, model, tokenizer, template, data_args, examples, step) -> dict[str, Any]:
    """Plans the held-out captions; the share of raw answers that are correct as written, with and without
    constrained decoding, and the mean IoU of the planned boxes with the reference boxes."""
    from layout_model.llm import GenerationOptions, LLMPlanner, PlannerConfig
    from layout_model.metrics import answer_is_correct, layout_iou
    from layout_model.td2 import parse_answer
    from textgen.core.layout import Layout, TextBox

    model.eval()
    llm_logger = logging.getLogger("layout_model.llm")
    level = llm_logger.level
    llm_logger.setLevel(logging.ERROR)  # fallbacks are what validation counts, not news
    config = PlannerConfig(prompt_template=template, use_chat_template=data_args.use_chat_template)
    result: dict[str, Any] = {"step": step, "n": len(examples)}
    for constrained in (False, True):
        planner = LLMPlanner(
            accelerator.unwrap_model(model),
            tokenizer,
            config,
            GenerationOptions(constrained=constrained, batch_size=16),
            name_or_path="validation",
        )
        outcomes = planner.plan_outcomes([e.caption for e in examples], [list(e.texts) for e in examples])
        correct = [answer_is_correct(o.report.raw, e.texts) for o, e in zip(outcomes, examples)]
        ious = []
        for o, e in zip(outcomes, examples):
            ref_lines, _ = parse_answer(e.answer)
            ref = Layout(boxes=tuple(TextBox(ln.keyword, tuple(v / 128 for v in ln.coords)) for ln in ref_lines))
            ious.append(layout_iou(o.layout, ref))
        key = "constrained" if constrained else "free"
        result[f"{key}_correct_rate"] = sum(correct) / len(correct)
        result[f"{key}_mean_iou"] = sum(ious) / len(ious)
    llm_logger.setLevel(level)
    accelerator.print(
        f"validation at step {step}: correct answers {result['free_correct_rate']:.0%} free, "
        f"{result['constrained_correct_rate']:.0%} constrained; box IoU {result['constrained_mean_iou']:.2f}"
    )
    accelerator.log({f"val/{k}": v for k, v in result.items() if k not in ("step", "n")}, step=step)
    return result


def run(args: argparse.Namespace) -> int:
    """``textgen train-planner``."""
    train(*split_arguments(args))
    return 0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parses ``argv`` and trains; returns the summary (see :func:`train`)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file is noise here
    return train(*parse_args(argv))


if __name__ == "__main__":
    main()
