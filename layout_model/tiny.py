"""The CPU recipe: a character-level tokenizer and a tiny causal LM built from a config, no download.

A planner must copy its keywords from the prompt letter by letter; a character-level tokenizer makes every
keyword spellable and a few hundred thousand parameters are enough to learn the format and the geometry on
synthetic data. ``python -m layout_model.tiny OUT`` writes such a random-initialised model folder
(safetensors + ``tokenizer.json``) that :mod:`layout_model.train` fine-tunes like any other model; on a GPU,
start from a real model instead (a small instruct model, or TextDiffuser-2's planner).
"""

from __future__ import annotations

import argparse
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
# Printable ASCII, newline, and the typographic quotes prompts use.
DEFAULT_ALPHABET = string.printable[:95] + "\n" + "“”‘’"


@dataclass(frozen=True)
class TinyConfig:
    """Size of the tiny model (Llama architecture: rotary positions help copying).

    Args:
        hidden_size: Width.
        num_layers: Transformer blocks (copying needs at least 2).
        num_heads: Attention heads.
        intermediate_size: MLP width.
        max_positions: Longest sequence (instruction + answer) in tokens.
        seed: Seed of the random initialisation.
    """

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_positions: int = 512
    seed: int = 0


def build_char_tokenizer(alphabet: str = DEFAULT_ALPHABET, model_max_length: int = 512):
    """A ``PreTrainedTokenizerFast`` with one token per character of ``alphabet`` (others map to ``<unk>``).

    It adds ``<s>`` before every text; ``<pad>``, ``</s>`` and ``<unk>`` are its other special tokens.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = list(dict.fromkeys(alphabet))
    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_lm(tokenizer, config: TinyConfig | None = None):
    """A randomly initialised ``LlamaForCausalLM`` sized by ``config`` for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = config or TinyConfig()
    torch.manual_seed(cfg.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_positions,
        bos_token_id=tokenizer.bos_token_id,  # a small vocabulary: never rely on the config's defaults
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(model_config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_tiny_base(out_dir: str | Path, config: TinyConfig | None = None, alphabet: str = DEFAULT_ALPHABET) -> Path:
    """Writes a random-initialised tiny model and its tokenizer to ``out_dir`` (safetensors); returns the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config or TinyConfig()
    tokenizer = build_char_tokenizer(alphabet, model_max_length=cfg.max_positions)
    model = build_tiny_lm(tokenizer, cfg)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a random-initialised tiny planner base model (CPU recipe).")
    parser.add_argument("output_dir")
    parser.add_argument("--hidden-size", type=int, default=TinyConfig.hidden_size)
    parser.add_argument("--num-layers", type=int, default=TinyConfig.num_layers)
    parser.add_argument("--num-heads", type=int, default=TinyConfig.num_heads)
    parser.add_argument("--max-positions", type=int, default=TinyConfig.max_positions)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = TinyConfig(
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        intermediate_size=2 * args.hidden_size,
        max_positions=args.max_positions,
        seed=args.seed,
    )
    path = save_tiny_base(args.output_dir, cfg)
    print(f"wrote a tiny base model to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
