import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The machine is shared: one torch thread per test process keeps timings stable.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def char_tokenizer():
    from layout_model.tiny import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A byte-level BPE (GPT-2 style: leading spaces inside tokens) trained offline on a few sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        'A poster that says "BLUE NOTE" with "every friday" below',
        "BLUE NOTE 12,10,116,40\nevery friday 30,50,98,64",
        'a sign "OPEN" and "24/7" 0,1,2,3,4,5,6,7,8,9,10,100,128',
    ] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


@pytest.fixture(scope="session")
def random_model(char_tokenizer):
    from layout_model.tiny import TinyConfig, build_tiny_lm

    return build_tiny_lm(char_tokenizer, TinyConfig(hidden_size=32, intermediate_size=64, num_layers=1)).eval()
