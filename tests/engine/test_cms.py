"""Continuum Memory System composition and the grouping of its parameters by level."""
import torch

from engine.config import LevelConfig, NLMMConfig
from engine.layers.cms import ContinuumMemory
from engine.models.nlmm import NLMM


def test_residual_mode_sums_every_level_on_the_same_input():
    cms = ContinuumMemory(8, 16, ["fast", "mid", "slow"], mode="residual").double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    expected = x + cms.levels["fast"](x) + cms.levels["mid"](x) + cms.levels["slow"](x)
    assert torch.allclose(cms(x), expected, atol=1e-14)


def test_nested_mode_composes_levels_in_order():
    cms = ContinuumMemory(8, 16, ["fast", "mid", "slow"], mode="nested").double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    h = x
    for name in ("fast", "mid", "slow"):
        h = h + cms.levels[name](h)  # MLP_l(h) = h + FFN_l(LN h)
    assert torch.allclose(cms(x), h, atol=1e-14)


def test_nested_and_residual_differ_for_the_same_weights():
    residual = ContinuumMemory(8, 16, ["a", "b"], mode="residual")
    nested = ContinuumMemory(8, 16, ["a", "b"], mode="nested")
    nested.load_state_dict(residual.state_dict())
    x = torch.randn(3, 8)
    assert not torch.allclose(residual(x), nested(x))


def test_level_parameters_partition_the_model():
    cfg = NLMMConfig(d_model=32, n_heads=2, L_mem=8,
                     cms_levels=[LevelConfig("fast", 1), LevelConfig("slow", 8)])
    model = NLMM(cfg)
    groups = model.level_parameters()
    assert set(groups) == {"fast", "slow"}
    blocks = cfg.depth.text + cfg.depth.image + cfg.depth.audio
    per_level = len(list(ContinuumMemory(32, 64, ["x"]).parameters()))
    assert all(len(params) == blocks * per_level for params in groups.values())
    ids = [id(p) for params in groups.values() for p in params] + [id(p) for p in model.outer_parameters()]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_residual_levels_computed_together_equal_each_level_on_its_own():
    """The residual composition stacks the levels' matmuls; the result and every gradient are the sum of
    each level's own pre-norm MLP, with whatever LayerNorm affine each level has learnt."""
    torch.manual_seed(0)
    cms = ContinuumMemory(16, 32, ["fast", "mid", "slow"]).double()
    for p in cms.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    reference = x + sum(level(x) for level in cms.levels.values())
    assert torch.allclose(cms(x), reference, atol=1e-10)
    inputs = list(cms.parameters()) + [x]
    for got, expected in zip(torch.autograd.grad(cms(x).pow(2).sum(), inputs),
                             torch.autograd.grad(reference.pow(2).sum(), inputs)):
        assert torch.allclose(got, expected, atol=1e-8)
