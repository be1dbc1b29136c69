"""Checkpoints damaged on disk: a byte flipped anywhere, a file cut short, bytes appended. Loading gives the
weights exactly as saved, or one CheckpointError naming the file; never other weights, never a traceback."""
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.training.checkpoint import CheckpointError, load_checkpoint, model_payload, save_checkpoint
from tests.fuzz.conftest import one_line


@pytest.fixture(scope="module")
def saved(scratch):
    from engine.data.text import Tokenizer
    from engine.models.nlmm import NLMM
    from tests.small_model import small_config
    cfg = small_config()
    torch.manual_seed(0)
    model = NLMM(cfg)
    path = save_checkpoint(scratch / "good.pt", model_payload(model, cfg, Tokenizer.build(["forty two"], 64), step=3))
    return path, path.read_bytes(), {k: v.clone() for k, v in model.state_dict().items()}


def _loads_exactly_or_says_why(path, weights) -> None:
    try:
        payload = load_checkpoint(path)
    except CheckpointError as err:
        assert one_line(str(err)) and str(path) in str(err), str(err)[:1000]
        return
    assert payload["model"].keys() == weights.keys()
    for name, value in weights.items():       # a flip the loader let through changed nothing that matters
        assert torch.equal(payload["model"][name], value), name


@settings(max_examples=120)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3))
def test_a_flipped_byte_anywhere_is_found_or_harmless(saved, scratch, flips):
    path, data, weights = saved
    damaged = bytearray(data)
    for where, mask in flips:
        damaged[int(where * len(damaged))] ^= mask
    target = scratch / "flipped.pt"
    target.write_bytes(bytes(damaged))
    _loads_exactly_or_says_why(target, weights)


@settings(max_examples=40)
@given(keep=st.floats(0, 1, exclude_max=True), tail=st.binary(max_size=64))
def test_a_file_cut_short_or_with_bytes_appended_is_one_line(saved, scratch, keep, tail):
    path, data, weights = saved
    target = scratch / "cut.pt"
    target.write_bytes(data[: int(keep * len(data))] + tail)
    _loads_exactly_or_says_why(target, weights)


def test_the_untouched_file_loads_exactly(saved, scratch):
    path, _, weights = saved
    copy = scratch / "copy.pt"
    shutil.copy(path, copy)
    _loads_exactly_or_says_why(copy, weights)
    assert load_checkpoint(copy)["step"] == 3
