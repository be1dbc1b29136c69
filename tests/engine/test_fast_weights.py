"""The chunked delta rule is held to the token-by-token recurrence; the module to its maths."""
import pytest
import torch

from engine.layers.fast_weights import (FastWeightAttention, SoftmaxAttention, fast_weight_chunked,
                                        fast_weight_recurrent, unit_lower_inverse)


def random_inputs(B, H, T, dk, dv, dtype=torch.float64, normalize=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, dk, generator=g, dtype=dtype)
    k = torch.randn(B, H, T, dk, generator=g, dtype=dtype)
    if normalize:
        q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    v = torch.randn(B, H, T, dv, generator=g, dtype=dtype)
    beta = torch.rand(B, H, T, generator=g, dtype=dtype)
    return q, k, v, beta


@pytest.mark.parametrize("rule", ["delta", "hebbian"])
@pytest.mark.parametrize("B,H,T,dk,dv,C", [(2, 3, 37, 8, 5, 8), (1, 2, 64, 16, 16, 16), (3, 1, 5, 4, 6, 8),
                                           (2, 2, 1, 4, 4, 4), (1, 4, 100, 8, 8, 7), (2, 1, 33, 6, 3, 1)])
def test_chunked_matches_recurrent_for_ragged_lengths(rule, B, H, T, dk, dv, C):
    q, k, v, beta = random_inputs(B, H, T, dk, dv, seed=T + C)
    ref_out, ref_state = fast_weight_recurrent(q, k, v, beta, rule=rule)
    out, state = fast_weight_chunked(q, k, v, beta, chunk_size=C, rule=rule)
    assert out.shape == (B, H, T, dv) and state.shape == (B, H, dv, dk)
    assert (out - ref_out).abs().max() <= 1e-10
    assert (state - ref_state).abs().max() <= 1e-10


@pytest.mark.parametrize("impl", [fast_weight_recurrent, fast_weight_chunked])
def test_carried_state_across_two_calls_equals_one_call(impl):
    q, k, v, beta = random_inputs(2, 2, 50, 8, 8, seed=3)
    whole, whole_state = impl(q, k, v, beta)
    first, mid_state = impl(q[:, :, :21], k[:, :, :21], v[:, :, :21], beta[:, :, :21])
    second, end_state = impl(q[:, :, 21:], k[:, :, 21:], v[:, :, 21:], beta[:, :, 21:], state=mid_state)
    assert torch.allclose(torch.cat([first, second], dim=2), whole, atol=1e-12, rtol=0)
    assert torch.allclose(end_state, whole_state, atol=1e-12, rtol=0)


def test_beta_one_unit_key_write_then_read_returns_the_value():
    g = torch.Generator().manual_seed(1)
    S0 = torch.randn(1, 1, 6, 4, generator=g, dtype=torch.float64)
    k = torch.nn.functional.normalize(torch.randn(1, 1, 1, 4, generator=g, dtype=torch.float64), dim=-1)
    v = torch.randn(1, 1, 1, 6, generator=g, dtype=torch.float64)
    out, S1 = fast_weight_recurrent(k, k, v, torch.ones(1, 1, 1, dtype=torch.float64), state=S0)
    assert torch.allclose(S1[0, 0] @ k[0, 0, 0], v[0, 0, 0], atol=1e-12)
    assert torch.allclose(out[0, 0, 0], v[0, 0, 0], atol=1e-12)  # reading with q = k gives v back


def test_state_is_per_sequence():
    q, k, v, beta = random_inputs(2, 1, 20, 4, 4, seed=5)
    out, _ = fast_weight_chunked(q, k, v, beta, chunk_size=8)
    v2 = v.clone()
    v2[1] += 10.0  # change only the second sequence
    out2, _ = fast_weight_chunked(q, k, v2, beta, chunk_size=8)
    assert torch.equal(out[0], out2[0])
    assert not torch.allclose(out[1], out2[1])


@pytest.mark.parametrize("rule", ["delta", "hebbian"])
def test_gradcheck_of_chunked_fast_weight_op(rule):
    q, k, v, beta = random_inputs(1, 2, 7, 3, 2, seed=9)
    inputs = tuple(x.clone().requires_grad_(True) for x in (q, k, v, beta))
    assert torch.autograd.gradcheck(lambda *a: fast_weight_chunked(*a, chunk_size=3, rule=rule)[0], inputs)


def test_gradcheck_of_recurrent_reference():
    q, k, v, beta = random_inputs(1, 1, 5, 3, 2, seed=11)
    inputs = tuple(x.clone().requires_grad_(True) for x in (q, k, v, beta))
    assert torch.autograd.gradcheck(lambda *a: fast_weight_recurrent(*a)[0], inputs)


@pytest.mark.parametrize("mode", ["normalized", "paper_exact"])
@pytest.mark.parametrize("rule", ["delta", "hebbian"])
def test_attention_module_chunked_equals_recurrent(mode, rule):
    layer = FastWeightAttention(16, 4, rule=rule, mode=mode, chunk_size=5).double()
    x = torch.randn(3, 23, 16, dtype=torch.float64)
    assert torch.allclose(layer(x), layer(x, impl="recurrent"), atol=1e-10)


def test_attention_module_carried_state_streams_a_long_sequence():
    layer = FastWeightAttention(16, 2, chunk_size=8).double()
    x = torch.randn(2, 40, 16, dtype=torch.float64)
    whole = layer(x)
    first, state = layer(x[:, :17], return_state=True)
    second = layer(x[:, 17:], state=state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-10)


@pytest.mark.parametrize("layer_factory", [lambda: FastWeightAttention(16, 4, chunk_size=4),
                                           lambda: SoftmaxAttention(16, 4)])
def test_padding_does_not_leak_into_real_tokens(layer_factory):
    layer = layer_factory().double()
    x = torch.randn(1, 9, 16, dtype=torch.float64)
    padded = torch.cat([x, torch.randn(1, 6, 16, dtype=torch.float64) * 100], dim=1)
    mask = torch.zeros(1, 15, dtype=torch.bool)
    mask[:, :9] = True
    assert torch.allclose(layer(padded, mask=mask)[:, :9], layer(x), atol=1e-10)
    assert torch.all(layer(padded, mask=mask)[:, 9:] == 0)


def test_paper_exact_raw_keys_stay_finite_on_long_sequences():
    layer = FastWeightAttention(32, 2, mode="paper_exact", chunk_size=16)
    with torch.no_grad():
        layer.k_proj.weight.mul_(20)  # keys far from unit length: unguarded, the state explodes
        out = layer(torch.randn(2, 512, 32))
    assert torch.isfinite(out).all()


def test_unguarded_raw_keys_do_blow_up_which_is_why_the_guard_exists():
    q, k, v, beta = random_inputs(1, 1, 64, 8, 8, normalize=False, seed=2)
    out, _ = fast_weight_chunked(q, k * 3, v, torch.ones_like(beta), chunk_size=16)
    assert not torch.isfinite(out).all() or out.abs().max() > 1e20


@pytest.mark.parametrize("C", [1, 2, 5, 16, 33])
def test_matmul_only_inverse_used_for_onnx_equals_the_triangular_solve(C):
    q, k, v, beta = random_inputs(2, 2, C, 8, 8, seed=C)
    A = torch.tril((k * beta[..., None]) @ k.transpose(-1, -2), diagonal=-1)
    eye = torch.eye(C, dtype=torch.float64)
    expected = torch.linalg.solve_triangular(A + eye, eye.expand_as(A), upper=False, unitriangular=True)
    assert (unit_lower_inverse(A) - expected).abs().max() <= 1e-10


def test_matmul_only_inverse_stays_exact_when_keys_are_nearly_parallel():
    """A trained image encoder's patches give nearly parallel keys and betas near 1: the earlier power
    series form was off by 0.19 there (while the solve is off by ~1e-7), and the shipped demo model's
    ONNX export missed its own 1e-4 check (5.6e-4)."""
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(4, 1, 32), dim=-1)
    k = torch.nn.functional.normalize(base + 0.15 * torch.randn(4, 32, 32, generator=g), dim=-1)
    beta = 0.9 + 0.1 * torch.rand(4, 32, 1, generator=g)
    A = torch.tril((k * beta) @ k.transpose(-1, -2), diagonal=-1)
    eye = torch.eye(32)
    exact = torch.linalg.inv(A.double() + eye.double())
    solve = torch.linalg.solve_triangular(A + eye, eye.expand_as(A), upper=False, unitriangular=True)
    assert (solve.double() - exact).abs().max() < 1e-5
    assert (unit_lower_inverse(A).double() - exact).abs().max() <= 2 * (solve.double() - exact).abs().max() + 1e-6
