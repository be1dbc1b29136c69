"""NLMM end to end: every modality alone and together, padding, bad input, precision."""
import math
from pathlib import Path

import pytest
import torch

from engine.config import NLMMConfig, load_config
from engine.device import autocast
from engine.models.nlmm import NLMM
from engine.training.step import TrainStep, synthetic_batch

B = 3


def small_config(**overrides) -> NLMMConfig:
    cfg = load_config("tiny")
    cfg.d_model, cfg.n_heads, cfg.L_mem = 32, 2, 8
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def inputs() -> dict:
    return {"text": torch.randint(1, 500, (B, 7)),
            "image": torch.rand(B, 1, 32, 64),
            "audio": torch.randn(B, 80, 120), "audio_mask": torch.ones(B, 120, dtype=torch.bool)}


@pytest.mark.parametrize("modalities", [("text",), ("image",), ("audio",), ("text", "image", "audio")])
def test_each_modality_alone_and_all_together_run_forward_and_backward(modalities):
    model = NLMM(small_config())
    batch = {k: v for k, v in inputs().items() if k.split("_")[0] in modalities}
    out = model(batch)
    assert set(out.embeddings) == set(modalities)
    for emb in out.embeddings.values():
        assert emb.shape == (B, 32)
        assert torch.allclose(emb.norm(dim=-1), torch.ones(B), atol=1e-5)
    sum(e.sum() for e in out.embeddings.values()).backward()
    for modality in modalities:
        grads = [p.grad for p in model.encoders[modality].parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    for modality in set(("text", "image", "audio")) - set(modalities):
        assert all(p.grad is None for p in model.encoders[modality].parameters())


def test_the_conv_stem_keeps_the_background_at_zero_and_learns_images():
    """Only the last convolution has a bias: a blank page gives every token exactly that bias (with a bias
    on each, the background's offset swamped the ink and nothing learnt). A model with it trains."""
    cfg = small_config(precision="fp32")
    cfg.image.stem = "conv"
    cfg.depth.text = cfg.depth.image = cfg.depth.audio = 1
    cfg.cms_levels[0].lr = cfg.train.lr = 2e-3
    model = NLMM(cfg)
    stem = model.encoders["image"].patch
    tokens = stem(torch.zeros(2, 1, 32, 64))
    assert tokens.shape == (2, 32, 4, 8)   # the same 4 x 8 patch tokens as the patch embedding
    assert torch.equal(tokens, stem[-1].bias[None, :, None, None].expand_as(tokens))
    step = TrainStep(model, cfg, torch.device("cpu"))
    batch, _ = synthetic_batch(cfg, 8, torch.device("cpu"), seconds=0.3)
    losses = [step(batch).loss for _ in range(12)]
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("attention,delta_rule,cms_mode", [("softmax", "normalized", "residual"),
                                                            ("hebbian", "normalized", "nested"),
                                                            ("fast_weight", "paper_exact", "nested")])
def test_every_attention_and_cms_variant_trains(attention, delta_rule, cms_mode):
    """Each variant learns: its contrastive loss on a repeated batch falls to well under half."""
    cfg = small_config(attention=attention, delta_rule=delta_rule, cms_mode=cms_mode, precision="fp32")
    cfg.depth.text = cfg.depth.image = cfg.depth.audio = 1
    cfg.cms_levels[0].lr = cfg.train.lr = 2e-3
    device = torch.device("cpu")
    step = TrainStep(NLMM(cfg), cfg, device)
    batch, _ = synthetic_batch(cfg, 8, device, seconds=0.3)
    losses = [step(batch).loss for _ in range(12)]   # no labels: item i pairs with item i
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.5 * losses[0], losses


def test_padded_audio_and_text_encode_like_unpadded():
    model = NLMM(small_config()).eval()
    mel = torch.randn(1, 80, 77)
    padded = torch.cat([mel, torch.randn(1, 80, 40)], dim=-1)
    mask = torch.zeros(1, 117, dtype=torch.bool)
    mask[:, :77] = True
    assert torch.allclose(model.encode("audio", padded, mask), model.encode("audio", mel), atol=1e-5)
    tokens = torch.tensor([[5, 9, 13]])
    assert torch.allclose(model.encode("text", torch.tensor([[5, 9, 13, 0, 0, 0]])), model.encode("text", tokens), atol=1e-5)


def test_bad_input_raises_clear_value_errors():
    model = NLMM(small_config())
    with pytest.raises(ValueError, match="at least one of text, image or audio"):
        model({})
    with pytest.raises(ValueError, match="empty input"):
        model.encode("image", torch.zeros(0, 1, 32, 64))
    with pytest.raises(ValueError, match=r"image: expected shape \(B, 1, 32, 64\)"):
        model.encode("image", torch.rand(2, 3, 32, 64))
    with pytest.raises(ValueError, match="unknown modality 'video'"):
        model.encode("video", torch.rand(2, 3))
    with pytest.raises(ValueError, match="same number of items"):
        model({"text": torch.randint(1, 9, (2, 4)), "image": torch.rand(3, 1, 32, 64)})
    with pytest.raises(ValueError, match="exceed the model's maximum"):
        model.encode("text", torch.randint(1, 9, (1, 40)))
    with pytest.raises(ValueError, match="unknown batch keys"):
        model({"txt": torch.randint(1, 9, (2, 4))})


def _matmul_dtypes(model, batch, precision, device) -> set:
    """The dtypes the model's linear layers computed in, under the precision's autocast."""
    seen = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with autocast(precision, device):
            out = model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    assert all(torch.isfinite(e).all() and e.dtype == torch.float32 for e in out.embeddings.values())
    return seen


def test_bf16_multiplies_in_bf16_where_the_cpu_has_it_and_falls_back_to_fp32_elsewhere(monkeypatch):
    from engine import device as engine_device
    cpu = torch.device("cpu")
    model = NLMM(small_config())
    monkeypatch.setattr(engine_device, "cpu_has_native_bf16", lambda: True)
    assert _matmul_dtypes(model, inputs(), "bf16", cpu) == {torch.bfloat16}
    monkeypatch.setattr(engine_device, "cpu_has_native_bf16", lambda: False)
    assert _matmul_dtypes(model, inputs(), "bf16", cpu) == {torch.float32}
    assert _matmul_dtypes(model, inputs(), "auto", cpu) == {torch.float32}, "auto is fp32 on a CPU"


def test_native_bf16_is_detected_as_the_cpu_reports_it():
    from engine.device import cpu_has_native_bf16
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.fail("this check reads the CPU's flags from /proc/cpuinfo (Linux)")
    words = set(flags.read_text().split())
    assert cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & words)


def test_shipped_presets_build():
    for name in ("tiny", "paper_exact"):
        model = NLMM(load_config(name))
        assert 1e5 < model.num_parameters() < 1e7
