"""Test-time adaptation by mechanism: each learner changes what it says and nothing else, only confident
queries teach the fast CMS level, and reset() puts every weight back bit for bit."""
import contextlib

import pytest
import torch

from engine.adaptation import Adapter, check_mechanisms
from engine.models.nlmm import NLMM
from engine.vocabulary import ADAPTATION_MECHANISMS
from tests.small_model import small_config


@pytest.fixture
def model():
    torch.manual_seed(0)
    cfg = small_config()
    cfg.hope.enable, cfg.hope.lr = True, 1e-2
    return NLMM(cfg).eval()


def changed(model, before) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def image_queries(n=3):
    return torch.rand(n, 1, 32, 64)


@pytest.mark.parametrize("mechanism, moves", [
    ("memory_gated", lambda k: k == "memory.slots"),
    ("memory_delta", lambda k: k == "memory.slots"),
    ("hope", lambda k: k.startswith("encoders.image.") and k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight"))),
])
def test_a_writing_mechanism_moves_only_its_own_weights_and_reset_restores_them(model, mechanism, moves):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = Adapter(model, [mechanism])
    with torch.no_grad(), adapter.writing():
        model.encode("image", image_queries())
    moved = changed(model, before)
    assert moved and all(moves(k) for k in moved), moved
    assert not model.memory.adapting and not any(layer.adapting for layer in model.self_modifying_layers())
    adapter.reset()
    assert not changed(model, before)


def test_the_domain_memory_writes_only_while_adapting(model):
    audio = model.encoders["audio"]
    audio.domain.updates.fill_(1)
    audio.domain.distance_var.fill_(1e-6)   # every query lies outside the training domain's spread
    mel = torch.randn(2, model.cfg.audio.n_mels, 120) * 3 + 5
    with torch.no_grad():
        model.encode("audio", mel)
        assert not audio.domain.slots
        with Adapter(model, ["domain"]).writing():
            model.encode("audio", mel)
    assert audio.domain.slots and not audio.domain.adapting


def test_a_confident_query_teaches_the_fast_level_only(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = Adapter(model, ["cms_fast"], reliable=1.0)
    query = image_queries(1)
    with torch.no_grad():
        gallery = model.encode("text", torch.randint(1, 100, (6, 4)))
    entropy = adapter.learn("image", {"image": query}, gallery, torch.arange(6), contextlib.nullcontext)
    assert entropy > 0 and adapter.steps == 1
    moved = changed(model, before)
    assert moved and all(k.startswith("encoders.image.") and ".cms.levels.fast." in k for k in moved), moved
    adapter.reset()
    assert not changed(model, before)


def test_however_long_the_stream_the_fast_level_stays_near_its_trained_weights(model):
    """Big steps on many queries: every fast-level tensor ends within max_move x its trained norm."""
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = Adapter(model, ["cms_fast"], cms_lr=5.0, reliable=1.0, max_move=0.05)
    with torch.no_grad():
        gallery = model.encode("text", torch.randint(1, 100, (6, 4)))
    for _ in range(20):
        adapter.learn("image", {"image": image_queries(1)}, gallery, torch.arange(6), contextlib.nullcontext)
    moved = [k for k in changed(model, trained)]
    assert moved and adapter.steps == 20
    for key in moved:
        distance = float((model.state_dict()[key] - trained[key]).norm())
        assert distance <= 0.05 * float(trained[key].norm()) * (1 + 1e-5), key


@pytest.mark.parametrize("mechanism", ["memory_gated", "memory_delta"])
def test_however_long_the_stream_every_slot_stays_near_its_trained_value(model, mechanism):
    """Writes at full rate from many queries: each slot ends within max_move x its trained norm, and a
    stream written without the bound goes further."""
    trained = model.memory.slots.detach().clone()

    def furthest(max_move):
        adapter = Adapter(model, [mechanism], memory_lr=1.0, max_move=max_move)
        with torch.no_grad(), adapter.writing():
            for _ in range(10):
                model.encode("image", image_queries(4))
        moved = (model.memory.slots.detach() - trained).norm(dim=-1) / trained.norm(dim=-1)
        adapter.reset()
        assert torch.equal(model.memory.slots, trained)
        return float(moved.max())

    assert furthest(0.05) <= 0.05 * (1 + 1e-5) < furthest(None)


def test_a_query_with_no_clear_answer_teaches_nothing(model):
    """All gallery rows alike: every answer is as likely, the entropy is at its maximum, the step is skipped."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = Adapter(model, ["cms_fast"])
    gallery = torch.nn.functional.normalize(torch.ones(6, model.cfg.d_model), dim=-1)
    adapter.learn("image", {"image": image_queries(1)}, gallery, torch.arange(6), contextlib.nullcontext)
    assert adapter.steps == 0 and adapter.skipped == 1 and not changed(model, before)


def test_every_mechanism_together_resets_exactly_and_restores_the_trained_rates(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rates = [layer.lr for layer in model.self_modifying_layers()]
    adapter = Adapter(model, ["memory_delta", "hope", "cms_fast", "domain"], hope_lr=0.05, reliable=1.0)
    with torch.no_grad():
        gallery = model.encode("text", torch.randint(1, 100, (6, 4)))
    for _ in range(3):
        query = image_queries(1)
        with torch.no_grad(), adapter.writing():
            model.encode("image", query)
        adapter.learn("image", {"image": query}, gallery, torch.arange(6), contextlib.nullcontext)
    assert [layer.lr for layer in model.self_modifying_layers()] == rates
    assert len(changed(model, before)) > 3
    adapter.reset()
    assert not changed(model, before)


@pytest.mark.parametrize("names, message", [
    (["memory_gated", "telepathy"], "unknown adaptation mechanism telepathy"),
    (["memory_gated", "memory_delta"], "choose one central-memory write rule"),
])
def test_an_impossible_choice_of_mechanisms_is_named(names, message):
    with pytest.raises(ValueError, match=message):
        check_mechanisms(names)
    assert check_mechanisms(ADAPTATION_MECHANISMS[1:]) == frozenset(ADAPTATION_MECHANISMS[1:])
