"""Text in any script, as users type or paste it: words or one DataError ("no words to read"), and the same
words however the text is normalised (full-width, compatibility forms, case)."""
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.data.errors import DataError
from engine.data.text import Tokenizer, words
from tests.fuzz.conftest import one_line

TOKENIZER = Tokenizer.build(["forty two", "сорок два", "四十二", "über café"], 64)
SCRIPTS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@settings(max_examples=400)
@given(text=SCRIPTS)
@example(text="сорок два")
@example(text="四十二")
@example(text="ｆｏｒｔｙ　４２")
@example(text="\u0663\u0662")   # Arabic-Indic digits 32
def test_any_text_reads_as_words_or_says_why(text):
    try:
        ids = TOKENIZER.encode(text, 16)
    except DataError as err:
        assert one_line(str(err)) and "no words to read" in str(err)
        assert not words(text)
        return
    assert 1 <= len(ids) <= 16 and all(0 <= i < len(TOKENIZER.vocabulary) for i in ids)


@settings(max_examples=300)
@given(text=SCRIPTS, form=st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"]))
@example(text="ｆｏｒｔｙ　４２", form="NFC")
@example(text="café", form="NFD")      # "e" and a combining accent: one word all the same
def test_the_words_do_not_depend_on_how_the_text_was_normalised(text, form):
    """The same words whether a keyboard, a paste or a file gave the text composed, decomposed or in
    compatibility forms (full-width letters and digits)."""
    assert words(unicodedata.normalize(form, text)) == words(text)
