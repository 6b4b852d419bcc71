import pytest

from layout_model.text import extract_texts, quoted_spans


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ('A vintage poster for a jazz night that says "BLUE NOTE"', ["BLUE NOTE"]),
        ("A sign that says “OPEN” and „Hallo“", ["OPEN", "Hallo"]),
        ("A storefront with 'Hello World' written on it.", ["Hello World"]),
        ("a store front that has the word ‘openai’ written on it.", ["openai"]),
        ("a book with the words 'Don't Panic!' written on it", ["Don't Panic!"]),
        ('a robot holding a sign with "Let\'s PAINT!" written on it', ["Let's PAINT!"]),
        ("a yellow wall with 'Hello, world.' written on it", ["Hello, world."]),
        ("the word 'START' written above the word 'SMILING'", ["START", "SMILING"]),
        ("一个写着「你好」的招牌，还有『世界』和《三体》", ["你好", "世界", "三体"]),
        ('a cake "Happy" and "Birthday" and "Anna"', ["Happy", "Birthday", "Anna"]),
        # Escaped quotes as in prompt files exported from JSON; the comma belongs to the sentence.
        (r"the text elements \"THE,\" \"RA,\" and \"SA4GONEARAz,\"", ["THE", "RA", "SA4GONEARAz"]),
    ],
)
def test_quoted_spans_become_texts(prompt, expected):
    assert extract_texts(prompt) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "Portrait of a tiger wearing a train conductor's hat",  # possessive
        "Don't stop believing, it's the dogs' park",  # contractions and a plural possessive
        "a poster for a rock 'n' roll night",  # elision, not a quote
        "A sign that says Deep Learning",  # no quotes at all
        'an empty sign ""',  # empty quotes
        'a 12" pizza',  # an inch mark
        'an unterminated "quote',
    ],
)
def test_no_text_is_not_an_error(prompt):
    assert extract_texts(prompt) == []


def test_apostrophes_never_pair_with_a_later_quote():
    assert extract_texts("the '90s band rock 'n' roll 'AC' at Joe's") == ["AC"]
    assert extract_texts("dogs' toys and 'WOOF'") == ["WOOF"]


def test_single_quotes_inside_double_quotes_belong_to_the_text():
    assert extract_texts("a sign \"it's 'fine'\" and 'ok'") == ["it's 'fine'", "ok"]


def test_repeated_texts_are_kept_once_in_order():
    assert extract_texts('"SALE" and "50% OFF" and "SALE" again') == ["SALE", "50% OFF"]
    assert quoted_spans('"SALE" and "SALE"') == ["SALE", "SALE"]


def test_whitespace_inside_quotes_is_normalised():
    assert extract_texts('a sign " OPEN\n NOW " here') == ["OPEN NOW"]


def test_explicit_texts_override_extraction():
    assert extract_texts('a sign "OPEN"', texts=["CLOSED", " ", "CLOSED", " late "]) == ["CLOSED", "late"]
    assert extract_texts('a sign "OPEN"', texts=[]) == []


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="prompt must be a string"):
        extract_texts(None)
    with pytest.raises(TypeError, match="single string"):
        extract_texts("x", texts="OPEN")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        extract_texts("x", texts=["a", 3])
