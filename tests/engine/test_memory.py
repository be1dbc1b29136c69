"""Central memory: test-time writes touch only the top-k slots, are logged, and reset exactly."""
import pytest
import torch

from engine.config import NLMMConfig, TTTConfig
from engine.layers.memory import CentralMemory
from engine.models.nlmm import NLMM


def make_model(mode: str) -> NLMM:
    return NLMM(NLMMConfig(d_model=32, n_heads=2, L_mem=16, ttt=TTTConfig(mode=mode, topk=3, lr=0.5))).eval()


@pytest.mark.parametrize("mode", ["gated_topk", "l2_regression"])
def test_ttt_write_changes_only_the_topk_slots_and_nothing_else(mode):
    model = make_model(mode)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    image = torch.rand(1, 1, 32, 64)
    with torch.no_grad():
        pooled = model.encoders["image"](image)
        expected_top = set(torch.topk(model.memory.attention(pooled, "image")[0], 3).indices.tolist())
    model.set_adapting(memory=True, hope=False)
    model.encode("image", image)
    changed = (model.memory.slots - before["memory.slots"]).abs().sum(-1) > 0
    assert set(torch.nonzero(changed).flatten().tolist()) == expected_top
    for key, value in model.state_dict().items():
        if key != "memory.slots":
            assert torch.equal(value, before[key]), key
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()}
    model.reset_memory()
    assert torch.equal(model.memory.slots, before["memory.slots"])  # bit for bit


def test_write_log_reports_slots_and_change_norms():
    model = make_model("gated_topk")
    reference = model.memory.slots.detach().clone()
    model.set_adapting(memory=True)
    model.encode("text", torch.randint(1, 100, (2, 6)))  # two queries -> two writes, in order
    writes = model.memory.writes_since(0)
    assert [w.index for w in writes] == [0, 1] and all(w.modality == "text" for w in writes)
    snapshot = model.memory.snapshot()
    moved = set(writes[0].slots.tolist()) | set(writes[1].slots.tolist())
    assert set(torch.nonzero(torch.as_tensor(snapshot["change"]) > 0).flatten().tolist()) == moved
    total = (model.memory.slots - reference).norm(dim=-1)
    assert torch.allclose(torch.as_tensor(snapshot["change"]), total, atol=1e-6)
    assert snapshot["slots"].shape == (16, 32) and set(snapshot["last_write_slots"].tolist()) == set(writes[1].slots.tolist())
    since_first = model.memory.snapshot(since=torch.as_tensor(snapshot["slots"]))["change"]
    assert not since_first.any(), "the change since given slots (a training run's start) is measured from them"


def test_no_write_without_adaptation_or_in_training():
    model = make_model("gated_topk")
    slots = model.memory.slots.detach().clone()
    model.encode("audio", torch.randn(2, 80, 50))
    model.train()
    model.encode("audio", torch.randn(2, 80, 50))  # training reads a *virtual* write, never in place
    assert torch.equal(model.memory.slots, slots)


def test_streamed_queries_see_the_writes_of_earlier_ones():
    model = make_model("gated_topk")
    text = torch.randint(1, 100, (1, 6))
    plain = model.encode("text", text)
    model.set_adapting(memory=True)
    for _ in range(5):
        model.encode("text", text)
    adapted = model.encode("text", text)
    assert not torch.allclose(plain, adapted)
    model.reset_memory()
    model.set_adapting(memory=False)
    assert torch.allclose(model.encode("text", text), plain)


def test_gate_and_proposal_networks_receive_gradients_in_training():
    memory = CentralMemory(8, 16, topk=2, train_write_prob=1.0).train()
    z = torch.randn(4, 16)
    memory(z, "image").pow(2).sum().backward()
    for net in (memory.proposal, memory.gate):
        assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0
