import json
import time

import pytest

from layout_model.data import iter_td2_examples, load_examples
from layout_model.llm import GenerationOptions, LLMPlanner
from layout_model.metrics import answer_is_correct, layout_iou
from layout_model.td2 import SHORT_TEMPLATE, format_answer
from layout_model.tiny import TinyConfig, save_tiny_base
from layout_model.train import main, resolve_template, tokenize_example
from tests.layout_model.synthetic import make_pairs, write_pair_shards

TINY = TinyConfig(hidden_size=32, intermediate_size=64, num_layers=1, max_positions=256)


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    return write_pair_shards(tmp_path_factory.mktemp("shards"), n=64, seed=1, shard_size=40)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("base"), TINY)


def _args(base, data, out, *extra):
    return [
        "--model_name_or_path", str(base), "--train_data", str(data), "--output_dir", str(out),
        "--prompt_template", "short", "--train_batch_size", "8", "--learning_rate", "3e-3", "--cpu",
        "--eval_fraction", "0", "--logging_steps", "1", *extra,
    ]  # fmt: skip


def test_pairs_come_from_the_data_stage_shards(small_shards):
    examples, skipped = load_examples([small_shards])
    assert len(examples) == 64 and not skipped
    caption, layout = make_pairs(1, seed=1)[0]
    assert examples[0].caption == caption and examples[0].answer == format_answer(layout)
    assert examples[0].texts == tuple(layout.texts) and examples[0].source == "00000.tar:000000"


def test_pairs_from_data_prep_synth_shards(tmp_path):
    synth = pytest.importorskip("data_prep.synth")
    synth.write_synthetic(tmp_path, n=6, size=64, seed=0, shard_size=4)
    examples, skipped = load_examples([tmp_path])
    assert len(examples) + sum(skipped.values()) == 6 and examples
    for example in examples:
        assert example.texts and all(f'"{t}"' in example.caption for t in example.texts)
        assert len(example.answer.splitlines()) == len(example.texts)


def test_pairs_from_textdiffuser2_json(tmp_path):
    instruction = (
        "Given a prompt that will be used to generate an image, plan the layout ... So let us begin. "
        "Prompt: a cake that says 'Happy Birthday'"
    )
    answer = "Happy 10,10,60,30\nBirthday 10,40,90,60"
    conversation = [{"from": "human", "value": instruction}, {"from": "gpt", "value": answer}]
    items = [
        {"id": "0", "conversations": conversation},
        {"caption": 'a sign "OPEN"', "layout": ["OPEN 20,20,100,50"]},
        {"caption": "a sign", "layout": "not a layout"},
    ]
    path = tmp_path / "layout_planner_data.json"
    path.write_text(json.dumps(items))
    examples = list(iter_td2_examples(path))
    assert [e.caption for e in examples] == ["a cake that says 'Happy Birthday'", 'a sign "OPEN"']
    assert examples[0].answer == "Happy 10,10,60,30\nBirthday 10,40,90,60" and examples[1].texts == ("OPEN",)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("\n".join(json.dumps(i) for i in items[:2]))
    assert len(load_examples([jsonl])[0]) == 2


def test_bad_training_data_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(ValueError, match="bad.json: invalid JSON"):
        load_examples([bad])
    bad.write_text(json.dumps([{"text": "x"}]))
    with pytest.raises(ValueError, match=r"bad.json: item 0: expected 'conversations'"):
        load_examples([bad])
    with pytest.raises(FileNotFoundError, match="missing"):
        load_examples([tmp_path / "missing"])
    with pytest.raises(ValueError, match="--prompt_template"):
        resolve_template("no field here")


def test_only_answer_tokens_are_learned(char_tokenizer, small_shards):
    import random

    example = load_examples([small_shards])[0][0]
    item = tokenize_example(
        char_tokenizer, example, SHORT_TEMPLATE, None, char_tokenizer.eos_token_id, random.Random(0)
    )
    n_prompt = len(char_tokenizer(example.caption + "\n")["input_ids"])
    assert item.labels[:n_prompt] == [-100] * n_prompt
    assert item.labels[n_prompt:] == item.input_ids[n_prompt:]
    assert char_tokenizer.decode(item.input_ids[n_prompt:-1]) == example.answer
    assert item.input_ids[-1] == char_tokenizer.eos_token_id


def test_resume_from_checkpoint_continues_on_the_same_batches(tmp_path, tiny_base, small_shards):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    args = _args(tiny_base, small_shards, out, "--max_train_steps", "6", "--checkpointing_steps", "3")
    summary = main([*args, "--checkpoints_total_limit", "5"])
    assert summary["global_step"] == 6 and (out / "checkpoint-3").is_dir() and (out / "checkpoint-6").is_dir()
    straight = load_file(out / "model.safetensors")

    import shutil

    shutil.rmtree(out / "checkpoint-6")
    resumed = main([*args, "--resume_from_checkpoint", "latest"])
    assert resumed["global_step"] == 6 and [h["step"] for h in resumed["history"]] == [4, 5, 6]
    again = load_file(out / "model.safetensors")
    for name, tensor in straight.items():
        assert (tensor - again[name]).abs().max() < 1e-6, name
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in summary["history"][3:]])
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        main([*args, "--resume_from_checkpoint", str(tmp_path)])


@pytest.mark.parametrize("merge", [True, False])
def test_lora_training_saves_a_loadable_planner(tmp_path, tiny_base, small_shards, merge):
    out = tmp_path / "lora"
    flags = ["--use_lora", "--lora_rank", "4", "--lora_target_modules", "q_proj,v_proj", "--max_train_steps", "2"]
    main(_args(tiny_base, small_shards, out, *flags, "--merge_lora" if merge else "--no-merge_lora"))
    assert (out / "adapter_config.json").is_file() != merge
    assert list(out.glob("*.safetensors")) and (out / "planner_config.json").is_file()
    planner = LLMPlanner.from_pretrained(out, device="cpu")
    assert planner.config.prompt_template == SHORT_TEMPLATE
    assert planner.plan('a sign that says "HOLA"').texts == ["HOLA"]


def _train_and_measure(tmp_path, steps: int, n_train: int, n_eval: int = 50):
    """Trains the tiny planner from scratch on synthetic shards; returns rates on held-out prompts."""
    base = save_tiny_base(tmp_path / "base", TinyConfig(hidden_size=128, intermediate_size=256, num_layers=2))
    shards = write_pair_shards(tmp_path / "shards", n=n_train, seed=0)
    out = tmp_path / "planner"
    start = time.monotonic()
    summary = main(
        _args(base, shards, out, "--max_train_steps", str(steps))
        + ["--train_batch_size", "16", "--lr_warmup_steps", "20", "--lr_scheduler", "constant_with_warmup"]
        + ["--logging_steps", "50", "--checkpointing_steps", "100000"]
    )
    train_seconds = time.monotonic() - start
    held_out = make_pairs(n_eval, seed=12345)  # other words than training: the keywords must be copied
    captions = [c for c, _ in held_out]
    texts = [layout.texts for _, layout in held_out]
    result = {"steps": summary["global_step"], "train_seconds": round(train_seconds)}
    for name, path in (("trained", out), ("untrained", base)):
        for constrained in (True, False):
            if name == "untrained" and not constrained:
                continue  # a random model writes no usable answer unconstrained: nothing to compare
            planner = LLMPlanner.from_pretrained(
                path, device="cpu", generation=GenerationOptions(constrained=constrained, batch_size=25)
            )
            if name == "untrained":  # the base folder has no planner_config: use the trained one's
                planner.config = LLMPlanner.from_pretrained(out, device="cpu").config
            outcomes = planner.plan_outcomes(captions, texts)
            key = f"{name}_{'constrained' if constrained else 'free'}"
            result[f"{key}_correct"] = (
                sum(answer_is_correct(o.report.raw, t) for o, t in zip(outcomes, texts)) / n_eval
            )
            result[f"{key}_iou"] = sum(layout_iou(o.layout, ref) for o, (_, ref) in zip(outcomes, held_out)) / n_eval
    return result


def test_training_on_cpu_teaches_a_tiny_model_to_plan(tmp_path):
    """The CPU proof: 260 steps of training from random init on 1,500 synthetic pairs (about 75 s on two cores),
    then 50 held-out prompts whose words never occur in training. A fixed step count, not a time budget: the
    result does not depend on how busy the machine is.

    Measured on the shared 2-core machine (256 steps under heavy load / 335 under light load): with constrained
    decoding the trained planner writes correct answers (every keyword exactly once, well-formed boxes on the
    grid, no repair needed) for 96% / 100% of the held-out prompts, boxes at mean IoU 0.71 / 0.75 with the
    reference layouts; the untrained model under the same constraint: 0% correct, IoU 0.01. Without the
    constraint the model copies only 2% of the keywords exactly after so few steps (it spells the first syllable
    and then loops): copying unseen words letter by letter takes far longer to learn (see the slow variant).
    """
    result = _train_and_measure(tmp_path, steps=260, n_train=1500)
    print(result)
    assert result["trained_constrained_correct"] >= 0.8, result
    assert result["trained_constrained_iou"] >= 0.5, result
    assert result["trained_constrained_iou"] > result["untrained_constrained_iou"] + 0.3, result
    assert result["trained_constrained_correct"] > result["untrained_constrained_correct"], result


@pytest.mark.slow
def test_longer_training_plans_closer_and_starts_to_copy(tmp_path):
    """10 minutes on CPU, 4,000 pairs: the geometry gets close to the reference and free decoding (no grammar)
    starts to copy unseen words. Measured: 2,912 steps, 100% correct constrained at IoU 0.90, 33% free."""
    result = _train_and_measure(tmp_path, steps=2900, n_train=4000, n_eval=100)
    print(result)
    assert result["trained_constrained_correct"] >= 0.95, result
    assert result["trained_constrained_iou"] >= 0.8, result
    assert result["trained_free_correct"] >= 0.15, result
