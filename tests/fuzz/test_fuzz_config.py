"""The config loader under generated YAML: an NLMMConfig that validates, or one short ConfigError."""
import dataclasses
import math

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.config import CONFIGS_DIR, ConfigError, NLMMConfig, config_to_dict, load_config, validate
from tests.fuzz.conftest import one_line

TINY = config_to_dict(load_config("tiny"))
KEYS = sorted({key for value in [TINY, *[v for v in TINY.values() if isinstance(v, dict)]] for key in value}
              | {"name", "lr", "chunk_size", "optimizer"})
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from(["inf", "-inf", "nan", ".inf", "1e-3", "1e400", "0x10", "auto", "bf16",
                                     "adamw", "../../etc", "residual", "ink", "photo"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner,
                                                 max_size=5)), max_leaves=25)


def numbers(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, float) else []


def check(path) -> None:
    """A config that loads can be trained: it validates, round-trips, its numbers are finite and its name
    is a plain folder name (it becomes part of the run folder's)."""
    try:
        cfg = load_config(path)
    except ConfigError as err:
        assert one_line(str(err), 400), str(err)[:1000]
        return
    assert isinstance(cfg, NLMMConfig) and validate(cfg) is cfg
    assert load_config(path) == cfg
    assert all(math.isfinite(n) for n in numbers(dataclasses.asdict(cfg)))
    assert "/" not in cfg.name and not cfg.name.startswith(".")


@settings(max_examples=300)
@given(changes=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6),
       section=st.sampled_from([None, "train", "audio", "image", "text", "ttt", "hope", "data", "depth"]))
@example(changes={"audio": None, "attention_chunk": {  # found by this test: escapes made the message 600 long
    "L_mem": [None, None, None], "attention": 1e10,
    "audio": {"attention": None, "temperature_init": None, "write_modalities": None,
              "audio": "0000000000\x1f0\U0003134b\U00043833\U0009dad3"},
    "attention_chunk": {"attention_chunk": None, "batch_size": None, "channels": None, "L_mem": -1e15,
                        "00\x1f\U0001019d": "00000000\x1f\x1f\x08"}}}, section=None)
def test_presets_with_generated_changes_load_or_say_why(scratch, changes, section):
    data = {**TINY, section: {**TINY[section], **changes}} if section else {**TINY, **changes}
    path = scratch / "changed.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    check(path)


@settings(max_examples=160)
@given(document=st.one_of(st.text(max_size=300), VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
def test_any_yaml_text_loads_or_says_why(scratch, document):
    path = scratch / "any.yaml"
    path.write_text(document, encoding="utf-8", errors="surrogatepass")
    check(path)


PRESET = (CONFIGS_DIR / "paper_exact.yaml").read_bytes()


@settings(max_examples=160)
@given(edits=st.lists(st.tuples(st.integers(0, len(PRESET) - 1),
                                st.sampled_from(list(b"&*!:-[]{}|>'\"#%@`,?0123456789\n\t ") + [0, 0xFF])),
                      min_size=1, max_size=8))
def test_damaged_presets_load_or_say_why(scratch, edits):
    data = bytearray(PRESET)
    for where, value in edits:
        data[where] = value
    path = scratch / "damaged.yaml"
    path.write_bytes(bytes(data))
    check(path)


@settings(max_examples=60)
@given(key=st.sampled_from(KEYS), depth=st.integers(1, 8), width=st.integers(2, 9),
       leaf=st.sampled_from(['"lol"', "1", "[]", "{a: 1}"]), section=st.sampled_from([None, "train", "audio"]))
def test_anchor_bombs_are_short_errors(scratch, key, depth, width, leaf, section):
    """Nested anchors: a few hundred bytes that expand to width^depth leaves when quoted."""
    indent = "    " if section else "  "
    lines = [f"{section}:"] if section else []
    lines += [f"{indent[:-2]}{key}:", f"{indent}- &a0 [{', '.join([leaf] * width)}]"]
    for level in range(1, depth):
        lines.append(f"{indent}- &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    path = scratch / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    check(path)
