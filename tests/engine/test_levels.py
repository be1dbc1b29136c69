import copy
import io
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from engine.optim import DMGD, LevelScheduler, StepReport, make_optimizer


@dataclass
class Level:
    name: str
    chunk_size: int
    lr: float
    optimizer: str
    weight_decay: float = 0.0


class Toy(nn.Module):
    """An outer head over a residual stack of one small block per level."""

    def __init__(self, names, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG left alone
            torch.manual_seed(seed)
            self.blocks = nn.ModuleDict({n: nn.Linear(4, 4) for n in names})
            self.outer = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.blocks.values():
            x = x + torch.tanh(block(x))
        return self.outer(x)


def batch(t):
    g = torch.Generator().manual_seed(t)
    return torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)


def loss_at(model, t):
    x, y = batch(t)
    return (model(x) - y).pow(2).mean()


def scheduler_for(model, levels, outer_lr=1e-2, outer_optimizer="adamw"):
    return LevelScheduler({lv.name: list(model.blocks[lv.name].parameters()) for lv in levels}, levels,
                          list(model.outer.parameters()), outer_lr, outer_optimizer)


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_slow_level_steps_on_chunk_boundaries_with_the_mean_gradient():
    levels = [Level("slow", 4, 0.1, "sgd")]
    model = Toy(["slow"])
    sched = scheduler_for(model, levels)
    block = model.blocks["slow"]
    # Reference: the level's optimizer (SGD, momentum 0.9) fed the chunk means by hand.
    ref = [p.detach().clone().requires_grad_() for p in block.parameters()]
    ref_opt = torch.optim.SGD(ref, lr=0.1, momentum=0.9)
    chunk = []
    for t in range(1, 13):
        before, outer_before = snapshot(block), snapshot(model.outer)
        loss = loss_at(model, t)
        chunk.append(torch.autograd.grad(loss, list(block.parameters()), retain_graph=True))
        loss.backward()
        sched.step()
        assert all(p.grad is None for p in model.parameters())  # clipping never sees a sum
        assert not same(outer_before, snapshot(model.outer))     # outer level: every step
        if t % 4:
            assert same(before, snapshot(block)), f"slow level moved at step {t}"
            continue
        assert not same(before, snapshot(block)), f"slow level did not move at step {t}"
        for i, r in enumerate(ref):
            total = chunk[0][i].clone()
            for grads in chunk[1:]:
                total = total + grads[i]
            r.grad = total / 4  # the mean, not the sum
        ref_opt.step()
        chunk = []
        assert same(ref, snapshot(block)), f"step {t}: not the optimizer step on the chunk mean"


def test_reports_and_cadence_for_levels_1_4_16():
    levels = [Level("fast", 1, 1e-2, "adamw"), Level("mid", 4, 1e-2, "sgd"), Level("slow", 16, 1e-2, "dmgd")]
    model = Toy(["fast", "mid"])  # "slow" has no params: still reported on its cadence
    sched = LevelScheduler({"fast": list(model.blocks["fast"].parameters()),
                            "mid": list(model.blocks["mid"].parameters())},
                           levels, list(model.outer.parameters()), 1e-2)
    assert sched.levels_due(4) == ["fast", "mid"] and sched.levels_due(7) == ["fast"]
    reports = []
    for t in range(1, 17):
        fast_before = snapshot(model.blocks["fast"])
        loss_at(model, t).backward()
        reports.append(sched.step())
        assert not same(fast_before, snapshot(model.blocks["fast"])), f"chunk_size=1 level idle at {t}"
    assert [r.step for r in reports] == list(range(1, 17))
    assert all(isinstance(r, StepReport) for r in reports)
    expected = {t: ["fast"] for t in range(1, 17)}
    expected.update({4: ["fast", "mid"], 8: ["fast", "mid"], 12: ["fast", "mid"], 16: ["fast", "mid", "slow"]})
    assert {r.step: r.stepped for r in reports} == expected


def test_lr_scale_is_applied():
    levels = [Level("fast", 1, 0.1, "sgd")]
    model = Toy(["fast"])
    sched = scheduler_for(model, levels, outer_lr=0.2, outer_optimizer="sgd")
    ref = copy.deepcopy(model)
    ref_level = torch.optim.SGD(ref.blocks["fast"].parameters(), lr=0.1 * 0.25, momentum=0.9)
    ref_outer = torch.optim.SGD(ref.outer.parameters(), lr=0.2 * 0.25, momentum=0.9)
    for t in range(1, 4):
        loss_at(model, t).backward()
        report = sched.step(lr_scale=0.25)
        loss_at(ref, t).backward()
        ref_level.step()
        ref_outer.step()
        ref.zero_grad(set_to_none=True)
        assert report.lrs == {"fast": 0.1 * 0.25, "outer": 0.2 * 0.25}
        assert same(snapshot(model), snapshot(ref)), f"step {t}"


def test_resume_mid_chunk_is_bit_identical():
    levels = [Level("fast", 1, 1e-2, "adamw"), Level("mid", 4, 5e-2, "dmgd", weight_decay=0.01)]

    def train(model, sched, steps):
        for t in steps:
            loss_at(model, t).backward()
            sched.step(lr_scale=0.5 + 0.1 * (t % 3))

    straight = Toy(["fast", "mid"])
    train(straight, scheduler_for(straight, levels), range(1, 13))

    first = Toy(["fast", "mid"])
    sched = scheduler_for(first, levels)
    train(first, sched, range(1, 8))  # 7 steps: 3 gradients waiting in the "mid" accumulator
    assert all(a is not None for a in sched.accumulators["mid"])
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)

    resumed = Toy(["fast", "mid"], seed=1)  # a fresh model, different init, overwritten by the load
    resumed.load_state_dict(ckpt["model"])
    sched2 = scheduler_for(resumed, levels)
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.t == 7
    train(resumed, sched2, range(8, 13))
    assert same(snapshot(straight), snapshot(resumed))


def test_zero_grad_keeps_the_accumulated_chunk():
    levels = [Level("mid", 4, 0.1, "sgd")]
    model = Toy(["mid"])
    sched = scheduler_for(model, levels)
    loss_at(model, 1).backward()
    sched.step()
    loss_at(model, 2).backward()
    sched.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert all(a is not None for a in sched.accumulators["mid"])


def test_make_optimizer_and_unknown_names():
    p = [nn.Parameter(torch.zeros(3))]
    assert isinstance(make_optimizer("adamw", p, 1e-3), torch.optim.AdamW)
    sgd = make_optimizer("sgd", p, 1e-3)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    assert isinstance(make_optimizer("dmgd", p, 1e-3, weight_decay=0.1), DMGD)
    with pytest.raises(ValueError, match="allowed: dmgd, adamw, sgd"):
        make_optimizer("lamb", p, 1e-3)
    model = Toy(["x"])
    with pytest.raises(ValueError, match="'lamb'"):
        scheduler_for(model, [Level("x", 2, 1e-3, "lamb")])
    with pytest.raises(ValueError, match="'lamb'"):
        scheduler_for(model, [Level("x", 2, 1e-3, "sgd")], outer_optimizer="lamb")
