"""The tokenizer: built from captions, unknown words, empty and very long text, save and restore."""
import pytest

from engine.data.errors import DataError
from engine.data.text import Tokenizer, words


def test_words_split_hyphens_and_keep_digit_runs():
    assert words("The number Forty-two!") == ["the", "number", "forty", "two"]
    assert words("42") == ["42"]


def test_build_encode_unknown_and_round_trip():
    tok = Tokenizer.build(["forty two", "the number forty two", "42", "seven"], max_size=64)
    assert tok.vocabulary[:2] == ["<pad>", "<unk>"]
    ids = tok.encode("forty seven", 16)
    assert ids == [tok.index["forty"], tok.index["seven"]]
    assert tok.encode("zebra forty", 16)[0] == 1  # unknown word
    again = Tokenizer.from_state_dict(tok.state_dict())
    assert again.vocabulary == tok.vocabulary


def test_vocabulary_is_capped_and_deterministic():
    captions = [f"word{i} common" for i in range(100)]
    a, b = Tokenizer.build(captions, 10), Tokenizer.build(list(reversed(captions)), 10)
    assert len(a) == 10 and a.vocabulary == b.vocabulary and a.vocabulary[2] == "common"


def test_empty_text_is_a_data_error_and_long_text_is_truncated():
    tok = Tokenizer.build(["forty two"], 16)
    with pytest.raises(DataError, match="no words"):
        tok.encode("", 16)
    with pytest.raises(DataError, match="no words"):
        tok.encode("?!", 16)
    assert len(tok.encode("forty two " * 1000, 16)) == 16  # 10,000 characters


@pytest.mark.parametrize("text,expected", [
    ("сорок два", ["сорок", "два"]),                 # Cyrillic: was "no words to read"
    ("über café", ["über", "café"]),                 # was ["ber", "caf"]
    ("四十二", ["四", "十", "二"]),                      # a script without spaces, read by characters
    ("ＦＯＲＴＹ ＴＷＯ ４２", ["forty", "two", "42"]),    # full-width forms (NFKC)
    ("Straße", ["strasse"]),                         # case folding, not lower()
    ("٤٢", ["42"]),                                  # Arabic-Indic digits read as 0-9
])
def test_text_in_any_language_is_read_as_words(text, expected):
    assert words(text) == expected


def test_every_built_in_caption_reads_as_it_always_did():
    """Unicode words must not change what the shipped model was trained on: ASCII splits as [a-z]+|\\d+."""
    import re
    from engine.data.builtin import load_builtin_manifest
    old = re.compile(r"[a-z]+|\d+")
    captions = {item.text for split in load_builtin_manifest().values() for item in split}
    assert captions and all(words(c) == old.findall(c.lower()) for c in captions)


def test_a_russian_caption_teaches_words_of_its_own():
    tok = Tokenizer.build(["forty two"], max_size=64).grown(["сорок два"])
    assert tok.encode("сорок два", 16) == [tok.index["сорок"], tok.index["два"]]
