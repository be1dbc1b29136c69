"""HOPE self-modifying projections follow W <- W (I - lr x x^T), deferred in training, undone by scopes."""
import torch

from engine.config import NLMMConfig
from engine.layers.hope import SelfModifyingLinear
from engine.models.nlmm import NLMM


def test_paper_exact_update_equals_w_times_i_minus_lr_xxT():
    layer = SelfModifyingLinear(5, 3, lr=0.1, mode="paper_exact").double().eval()
    layer.adapting = True
    W = layer.weight.detach().clone()
    x = torch.randn(5, dtype=torch.float64)
    layer(x[None])
    expected = W @ (torch.eye(5, dtype=torch.float64) - 0.1 * torch.outer(x, x))
    assert torch.allclose(layer.weight, expected, atol=1e-14)


def test_normalized_update_divides_by_xTx():
    layer = SelfModifyingLinear(4, 4, lr=0.5, mode="normalized").double().eval()
    layer.adapting = True
    W = layer.weight.detach().clone()
    x = 7.0 * torch.randn(4, dtype=torch.float64)
    layer(x[None])
    expected = W @ (torch.eye(4, dtype=torch.float64) - 0.5 * torch.outer(x, x) / x.dot(x))
    assert torch.allclose(layer.weight, expected, atol=1e-14)


def test_training_defers_the_update_until_applied():
    layer = SelfModifyingLinear(4, 4, lr=0.1).train()
    W = layer.weight.detach().clone()
    layer(torch.randn(2, 3, 4)).sum().backward()
    assert torch.equal(layer.weight, W)  # autograd saw (and still sees) the same weights
    assert layer.apply_pending_update()
    assert not torch.equal(layer.weight, W)
    assert not layer.apply_pending_update()  # applied once only


def test_eval_without_adaptation_never_changes_weights():
    layer = SelfModifyingLinear(4, 4, lr=0.1).eval()
    W = layer.weight.detach().clone()
    layer(torch.randn(3, 4))
    assert torch.equal(layer.weight, W) and layer.pending_update is None


def test_adaptation_scope_restores_every_weight_exactly():
    model = NLMM(NLMMConfig(d_model=32, n_heads=2, L_mem=8)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = [m for m in model.encoders["image"].modules() if isinstance(m, SelfModifyingLinear)]
    assert layers, "HOPE is enabled by default: q/k/v projections must self-modify"
    with model.adaptation_scope():
        model.encode("image", torch.rand(3, 1, 32, 64))
        assert not torch.equal(layers[0].weight, before[_name_of(model, layers[0])])
        assert not torch.equal(model.memory.slots, before["memory.slots"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def _name_of(model, layer):
    return next(f"{n}.weight" for n, m in model.named_modules() if m is layer)


def test_an_attention_layer_updates_each_projection_by_its_own_weight_and_the_shared_input():
    from engine.layers.fast_weights import FastWeightAttention
    attention = FastWeightAttention(16, 2, hope_lr=0.05).double().train()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    before = {name: getattr(attention, name).weight.detach().clone() for name in ("q_proj", "k_proj", "v_proj")}
    attention(x).sum().backward()
    G = (x / x.norm(dim=-1, keepdim=True)).reshape(-1, 16)
    G = G.T @ G / 15
    for name, W in before.items():
        assert torch.allclose(getattr(attention, name).pending_update, -0.05 * W @ G, atol=1e-14), name
