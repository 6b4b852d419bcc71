import json
import logging

import pytest

from layout_model import load_planner
from layout_model.constrained import TD2Grammar, TokenTable
from layout_model.llm import GenerationOptions, LLMPlanner, PlannerConfig, encode_prompt
from layout_model.metrics import boxes_outside, keyword_recall, overlapping_pairs
from layout_model.rule import RulePlanner
from layout_model.td2 import SHORT_TEMPLATE, parse_answer
from layout_model.text import extract_texts
from layout_model.tiny import TinyConfig, build_tiny_lm

PROMPTS = [
    'A sign that says "OPEN".',
    'a poster "BLUE NOTE" with "every friday" below',
    'a flyer "START" and "START NOW" and "24/7"',
    "a photo of a cat",  # no text: no model call
]


def test_grammar_prefixes():
    g = TD2Grammar(["START", "START NOW", "24/7"])
    assert g.allows("") and g.allows("STA") and g.allows("START ") and g.allows("START N")
    assert g.allows("START 1") and g.allows("START 12,0,128,") and g.allows("START 12,0,128,40\n")
    assert not g.allows("STOP")
    assert not g.allows("START 129")  # beyond the grid
    assert not g.allows("START 01")  # leading zero
    assert not g.allows("START 1,2,3,4,")  # a fifth number
    assert not g.allows("START 1,2,3\n")  # a line ends only after four numbers
    assert not g.allows("START 1,2,3,4\nSTART 1,2,3,4")  # each keyword once
    assert g.allows("START NOW 1,2,3,4\nSTART 5,6,7,8\n24/7 1,2,3,4\n")
    assert not g.allows("START NOW 1,2,3,4\nSTART 5,6,7,8\n24/7 1,2,3,4\nX")
    assert not g.can_end("START 1,2,3,4")
    assert g.can_end("START NOW 1,2,3,4\nSTART 5,6,7,8\n24/7 1,2,3,4")
    assert g.can_end("START NOW 1,2,3,4\nSTART 5,6,7,8\n24/7 1,2,3,4\n")


@pytest.mark.parametrize("tokenizer_name", ["char_tokenizer", "bpe_tokenizer"])
def test_token_table_reads_tokens_as_they_appear_mid_text(tokenizer_name, request):
    tokenizer = request.getfixturevalue(tokenizer_name)
    table = TokenTable(tokenizer)
    text = "BLUE NOTE 12,10,116,40\nevery friday 30,50,98,64"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert table.text(ids) == text
    assert all(table.strings[i] is None for i in tokenizer.all_special_ids)


def _planner(model, tokenizer, **generation):
    config = PlannerConfig(prompt_template=SHORT_TEMPLATE)
    return LLMPlanner(model, tokenizer, config, GenerationOptions(**generation), name_or_path="tiny-random")


def test_constrained_decoding_makes_even_a_random_model_write_the_keywords(random_model, char_tokenizer):
    planner = _planner(random_model, char_tokenizer, constrained=True)
    outcomes = planner.plan_outcomes(PROMPTS, width=640, height=480, seed=0)
    for prompt, outcome in zip(PROMPTS, outcomes):
        expected = extract_texts(prompt)
        layout = outcome.layout
        layout.validate()
        assert layout.size == (640, 480) and layout.caption == prompt
        assert keyword_recall(layout, expected) == 1.0 and boxes_outside(layout) == 0
        if not expected:
            assert outcome.report is None and layout.boxes == ()
            continue
        lines, problems = parse_answer(outcome.report.raw)
        assert problems == [] and sorted(ln.keyword for ln in lines) == sorted(expected)
        assert all(0 <= v <= 128 for ln in lines for v in ln.coords)


def test_constrained_decoding_with_a_bpe_tokenizer(bpe_tokenizer):
    model = build_tiny_lm(bpe_tokenizer, TinyConfig(hidden_size=32, intermediate_size=64, num_layers=1)).eval()
    planner = _planner(model, bpe_tokenizer, constrained=True)
    outcomes = planner.plan_outcomes(PROMPTS[:3])
    for prompt, outcome in zip(PROMPTS, outcomes):
        lines, problems = parse_answer(outcome.report.raw)
        assert problems == [] and sorted(ln.keyword for ln in lines) == sorted(extract_texts(prompt))


def test_a_random_model_without_constraints_falls_back_with_a_logged_reason(random_model, char_tokenizer, caplog):
    planner = _planner(random_model, char_tokenizer, constrained=False)
    with caplog.at_level(logging.WARNING, logger="layout_model.llm"):
        outcomes = planner.plan_outcomes(PROMPTS[:3], seed=[0, 1, 2])
    assert all(not o.used_model for o in outcomes)
    assert "using the rule planner" in caplog.text and "the model placed 0 of" in caplog.text
    rule = RulePlanner()
    for i, (prompt, outcome) in enumerate(zip(PROMPTS, outcomes)):
        assert outcome.layout == rule.plan(prompt, seed=i)


def test_batches_match_single_prompts(random_model, char_tokenizer):
    planner = _planner(random_model, char_tokenizer, constrained=True, batch_size=3)
    batch = planner.plan_batch(PROMPTS)
    assert [layout.texts for layout in batch] == [planner.plan(p).texts for p in PROMPTS]
    assert batch == [planner.plan(p) for p in PROMPTS]


def test_explicit_texts_and_no_model_call_without_texts(char_tokenizer):
    class NoModel:
        def generate(self, **kwargs):
            raise AssertionError("the model must not run for a prompt without text")

    planner = LLMPlanner(NoModel(), char_tokenizer, PlannerConfig(prompt_template=SHORT_TEMPLATE))
    assert planner.plan("a photo of a cat").boxes == ()
    assert planner.plan('a sign "OPEN"', texts=[]).boxes == ()


def test_sampling_is_seeded(random_model, char_tokenizer):
    planner = _planner(random_model, char_tokenizer, constrained=True, do_sample=True, temperature=1.0, top_p=1.0)
    prompt = PROMPTS[1]
    assert planner.plan(prompt, seed=5) == planner.plan(prompt, seed=5)
    assert len({planner.plan(prompt, seed=s).boxes for s in range(4)}) > 1


def test_chat_template_wraps_the_instruction(char_tokenizer):
    tokenizer = char_tokenizer.__class__(tokenizer_object=char_tokenizer.backend_tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}[{{ m['content'] }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}"
    )
    ids = encode_prompt(tokenizer, "hi", None)
    assert tokenizer.decode(ids) == "[hi]>"
    assert tokenizer.decode(encode_prompt(tokenizer, "hi", False), skip_special_tokens=True) == "hi"
    with pytest.raises(ValueError, match="no chat template"):
        encode_prompt(char_tokenizer, "hi", True)


def test_from_pretrained_round_trip(tmp_path, random_model, char_tokenizer):
    random_model.save_pretrained(tmp_path, safe_serialization=True)
    char_tokenizer.save_pretrained(tmp_path)
    PlannerConfig(prompt_template=SHORT_TEMPLATE, max_new_tokens=64).save(tmp_path)
    planner = load_planner(str(tmp_path), device="cpu")
    assert isinstance(planner, LLMPlanner)
    assert planner.config.prompt_template == SHORT_TEMPLATE and planner.config.max_new_tokens == 64
    assert planner.plan(PROMPTS[0]).texts == ["OPEN"]
    assert list(tmp_path.glob("*.safetensors"))


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such planner folder"):
        load_planner(str(tmp_path / "missing"))
    (tmp_path / "planner_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="planner_config.json: invalid JSON"):
        PlannerConfig.load(tmp_path)
    (tmp_path / "planner_config.json").write_text(json.dumps({"prompt_template": "{prompt}", "temperature": 3}))
    with pytest.raises(ValueError, match="unknown field"):
        PlannerConfig.load(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        load_planner(" ")
    with pytest.raises(TypeError, match="planner must be"):
        load_planner(3)


def test_load_planner_rule_and_objects():
    rule = load_planner("rule")
    assert isinstance(rule, RulePlanner)
    assert load_planner(rule) is rule
    layout = rule.plan('a "SALE" sign')
    assert overlapping_pairs(layout) == 0


def test_keywords_the_tokenizer_cannot_spell_are_released_and_repaired(random_model, char_tokenizer):
    planner = _planner(random_model, char_tokenizer, constrained=True)
    outcome = planner.plan_outcomes(['a sign 「你好」 and "OK"'])[0]
    layout = outcome.layout.validate()
    assert sorted(layout.texts) == sorted(["你好", "OK"])
    assert boxes_outside(layout) == 0 and overlapping_pairs(layout) == 0


class ScriptedModel:
    """Stands in for a causal LM: 'generates' the given answers, one per row."""

    def __init__(self, tokenizer, answers):
        import torch
        from transformers import GenerationConfig

        self.tokenizer, self.answers = tokenizer, list(answers)
        self.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id)
        self._param = torch.zeros(1)

    def parameters(self):
        yield self._param

    def generate(self, input_ids, attention_mask, **kwargs):
        import torch

        rows = []
        for row in input_ids.tolist():
            answer = self.tokenizer(self.answers.pop(0), add_special_tokens=False)["input_ids"]
            rows.append(row + answer + [self.tokenizer.eos_token_id])
        width = max(len(r) for r in rows)
        return torch.tensor([r + [self.tokenizer.pad_token_id] * (width - len(r)) for r in rows])


MALFORMED = {
    "garbage": "I think the layout should be nice :) ,,,, 12 34\n\n]]",
    "partial line": "OPEN 10,20,1",
    "out of range": "OPEN -40,300,20,900\nNOW 140,-5,3,60",
    "missing keyword": "OPEN 10,10,118,50",
    "unexpected and duplicated": "BANANA 1,2,3,4\nOPEN 10,10,60,40\nOPEN 70,10,118,40",
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_outputs_never_break_planning(case, char_tokenizer):
    prompt = 'a sign that says "OPEN" and "NOW"'
    planner = LLMPlanner(
        ScriptedModel(char_tokenizer, [MALFORMED[case]]),
        char_tokenizer,
        PlannerConfig(prompt_template=SHORT_TEMPLATE),
        GenerationOptions(constrained=False),
    )
    outcome = planner.plan_outcomes([prompt], seed=4)[0]
    layout = outcome.layout.validate()
    assert sorted(layout.texts) == ["NOW", "OPEN"]
    assert boxes_outside(layout) == 0 and overlapping_pairs(layout) == 0
    assert outcome.report.raw == MALFORMED[case]
    if case in ("garbage", "partial line", "empty"):
        assert not outcome.used_model and outcome.layout == RulePlanner().plan(prompt, seed=4)
    else:
        assert outcome.used_model and outcome.report.repairs
