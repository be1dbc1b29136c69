"""Text in: any string. Text out: word-piece-free token ids a small model can learn from scratch.

A word-level vocabulary is built from the training captions (most frequent first), saved with the
checkpoint and restored with it, so a query is tokenised exactly as training was. Id 0 pads, id 1
stands for any word the vocabulary does not know.
"""
from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from typing import Iterable

from engine.data.errors import DataError

PAD, UNK = "<pad>", "<unk>"
# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer) are read a character
# at a time; every other script by runs of letters, as English always was.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_WORD = re.compile(rf"[{_UNSPACED}]|[^\W\d_{_UNSPACED}]+|\d+")


def words(text: str, limit: int | None = None) -> list[str]:
    """Words and digit runs, in any script: "Forty-two!" -> ["forty", "two"]; "42" -> ["42"]; "über café"
    -> ["über", "café"]; "сорок два" -> ["сорок", "два"]; "四十二" -> ["四", "十", "二"]. Text is NFKC-normalised
    and case-folded first (full-width "４２" is "42", "Straße" is "strasse") and digits of any script are
    read as 0-9. With `limit`, the first that many (a pasted book costs no more than its first words)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return [_ascii_digits(match.group()) for match in itertools.islice(_WORD.finditer(text), limit)]


def _ascii_digits(word: str) -> str:
    return "".join(str(unicodedata.digit(c)) for c in word) if word[0].isdigit() else word


class Tokenizer:
    def __init__(self, vocabulary: list[str]):
        if vocabulary[:2] != [PAD, UNK]:
            raise ValueError("a vocabulary starts with '<pad>', '<unk>'")
        self.vocabulary = list(vocabulary)
        self.index = {word: i for i, word in enumerate(self.vocabulary)}

    @classmethod
    def build(cls, captions: Iterable[str], max_size: int) -> "Tokenizer":
        counts = Counter(word for caption in captions for word in words(caption))
        ranked = sorted(counts, key=lambda w: (-counts[w], w))  # ties broken by spelling: deterministic
        return cls([PAD, UNK] + ranked[: max(0, max_size - 2)])

    def grown(self, captions: Iterable[str]) -> "Tokenizer":
        """This vocabulary plus the words of `captions` it lacks (most frequent first), appended: every old
        word keeps its id, so a trained model reads old text exactly as before (`nlmm train --init`)."""
        counts = Counter(word for caption in captions for word in words(caption) if word not in self.index)
        return Tokenizer(self.vocabulary + sorted(counts, key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str, max_tokens: int) -> list[int]:
        if not isinstance(text, str):
            raise DataError(f"text: expected a string, got {type(text).__name__}")
        ids = [self.index.get(word, 1) for word in words(text, max_tokens)]
        if not ids:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise DataError(f"text {shown!r}: no words to read (empty or only punctuation)")
        return ids

    def unknown_words(self, text: str) -> list[str]:
        return [w for w in words(text) if w not in self.index]

    def state_dict(self) -> dict:
        return {"vocabulary": list(self.vocabulary)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Tokenizer":
        return cls(list(state["vocabulary"]))
