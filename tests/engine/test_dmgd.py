import copy
import io
import re

import pytest
import torch

from engine.optim import DMGD

MODES = ["surrogate", "l2_regression"]


def quadratic(dim=20, cond=100.0, seed=0):
    """f(x) = 1/2 x^T A x with A diagonal, eigenvalues log-spaced in [1/cond, 1]."""
    g = torch.Generator().manual_seed(seed)
    a = torch.logspace(-torch.log10(torch.tensor(cond)).item(), 0, dim)
    return a, torch.randn(dim, generator=g)


def f(a, x):
    return 0.5 * (a * x * x).sum()


def run_quadratic(make_opt, steps=100, **kw):
    a, x0 = quadratic(**kw)
    x = torch.nn.Parameter(x0.clone())
    opt = make_opt([x])
    losses, internal = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = f(a, x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        internal.append(getattr(opt, "last_internal_loss", None))
    return f(a, x).item(), losses, internal, opt


def make_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in [(5, 3), (4,), ()]]


def set_grads(params, step):
    g = torch.Generator().manual_seed(1000 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


def test_first_step_is_heavy_ball_momentum():
    ps_d, ps_s = make_params(), make_params()
    dmgd = DMGD(ps_d, lr=0.1, momentum=0.9)
    sgd = torch.optim.SGD(ps_s, lr=0.1, momentum=0.9, dampening=0)
    assert torch.equal(dmgd.memory[2].weight, torch.zeros_like(dmgd.memory[2].weight))
    set_grads(ps_d, 0)
    set_grads(ps_s, 0)
    dmgd.step()
    sgd.step()
    for a, b in zip(ps_d, ps_s):
        assert torch.equal(a, b)
    # Momentum buffers agree too (the heavy-ball state, not just the first update).
    for a, b in zip(ps_d, ps_s):
        assert torch.equal(dmgd.state[a]["momentum_buffer"], sgd.state[b]["momentum_buffer"])


@pytest.mark.parametrize("mode", MODES)
def test_beats_sgd_on_ill_conditioned_quadratic(mode):
    lr = 1.0  # stable for SGD: lr * lambda_max = 1 < 2
    sgd_final, sgd_losses, _, _ = run_quadratic(lambda p: torch.optim.SGD(p, lr=lr))
    final, losses, _, _ = run_quadratic(lambda p: DMGD(p, lr=lr, internal_loss_mode=mode))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert final < losses[0]
    assert final * 10 < sgd_final, (final, sgd_final)


def test_memory_learns_l2_regression():
    _, _, internal, opt = run_quadratic(lambda p: DMGD(p, lr=1.0, internal_loss_mode="l2_regression"))
    assert internal[0] is None  # nothing to learn from before the second gradient
    assert not torch.equal(opt.memory[2].weight, torch.zeros_like(opt.memory[2].weight))
    assert not torch.equal(opt.projection, torch.tensor([[1.0, 0.0]]))  # the delta rule wrote P
    early, late = sum(internal[1:11]) / 10, sum(internal[-10:]) / 10
    assert late < 0.8 * early, (early, late)


@pytest.mark.parametrize("mode", MODES)
def test_memory_internal_step_descends_its_loss(mode):
    """On a fixed batch of (key at t-1, gradient at t) pairs, phi's own steps lower its loss."""
    torch.manual_seed(0)
    keys = torch.randn(512, 2)
    values = 0.7 * keys[:, 0] - 0.2 * keys[:, 1] + 0.1 * torch.randn(512)
    opt = DMGD([torch.nn.Parameter(torch.zeros(1))], memory_lr=1e-2, internal_loss_mode=mode)
    first_layer = opt.memory[0].weight.clone()
    losses = []
    for _ in range(60):
        opt._train_memory(keys, values)
        losses.append(opt.last_internal_loss)
    assert losses[-1] < 0.7 * losses[0], (losses[0], losses[-1])
    assert not torch.equal(opt.memory[0].weight, first_layer)  # learning reaches the hidden layer


def test_correction_is_bounded_by_gradient_scale():
    opt = DMGD([torch.nn.Parameter(torch.zeros(1))], memory_bound=1.0)
    with torch.no_grad():
        opt.memory[2].weight.fill_(100.0)
        out = opt._phi(torch.randn(1000, 2) * 50)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_round_trip_is_bit_identical(mode):
    kw = dict(lr=0.05, internal_loss_mode=mode, memory_lr=1e-2, weight_decay=0.01, memory_samples=8)
    params = make_params()
    opt = DMGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.02}], **kw)
    for t in range(5):
        set_grads(params, t)
        opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    clones = copy.deepcopy(params)
    resumed = DMGD([{"params": clones[:2]}, {"params": clones[2:], "lr": 0.02}], **kw, seed=123)
    resumed.load_state_dict(state)
    for t in range(5, 10):
        for ps, o in ((params, opt), (clones, resumed)):
            set_grads(ps, t)
            o.step()
    for a, b in zip(params, clones):
        assert torch.equal(a, b)
    assert torch.equal(opt.projection, resumed.projection)
    for a, b in zip(opt.memory.parameters(), resumed.memory.parameters()):
        assert torch.equal(a, b)
    assert opt.last_internal_loss == resumed.last_internal_loss


def test_real_optimizer_behaviour():
    params = make_params()
    opt = DMGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.0}], lr=0.1)
    before = [p.detach().clone() for p in params]
    params[0].grad = torch.ones_like(params[0])  # params[1] has no grad: skipped
    params[2].grad = torch.ones_like(params[2])  # scalar param in a group with lr 0

    loss = opt.step(closure=lambda: torch.tensor(3.0))
    assert loss.item() == 3.0
    assert not torch.equal(params[0], before[0])
    assert torch.equal(params[1], before[1]) and "momentum_buffer" not in opt.state[params[1]]
    assert torch.equal(params[2], before[2])
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=-1.0), "lr"),
    (dict(momentum=1.0), "momentum"),
    (dict(memory_lr=-0.1), "memory_lr"),
    (dict(memory_hidden=0), "memory_hidden"),
    (dict(internal_loss_mode="x"), "internal_loss_mode must be 'surrogate' or 'l2_regression', got"),
    (dict(weight_decay=-1e-4), "weight_decay"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match="^" + re.escape(name) + " "):
        DMGD([torch.nn.Parameter(torch.zeros(2))], **kwargs)
