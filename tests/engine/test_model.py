"""NLMM end to end: every modality alone and together, padding, bad input, precision."""
import pytest
import torch

from engine.config import NLMMConfig, load_config
from engine.device import autocast, pick_device
from engine.models.nlmm import NLMM

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
    assert out.presence.sum(-1).eq(len(modalities)).all()
    (sum(e.sum() for e in out.embeddings.values()) + out.fused.pow(2).mean()).backward()
    for modality in modalities:
        grads = [p.grad for p in model.encoders[modality].parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    for modality in set(("text", "image", "audio")) - set(modalities):
        assert all(p.grad is None for p in model.encoders[modality].parameters())


@pytest.mark.parametrize("attention,delta_rule,cms_mode", [("softmax", "normalized", "residual"),
                                                            ("hebbian", "normalized", "nested"),
                                                            ("fast_weight", "paper_exact", "nested")])
def test_every_attention_and_cms_variant_trains(attention, delta_rule, cms_mode):
    model = NLMM(small_config(attention=attention, delta_rule=delta_rule, cms_mode=cms_mode))
    out = model(inputs())
    loss = -(out.embeddings["text"] * out.embeddings["image"]).sum()
    loss.backward()
    assert torch.isfinite(loss)


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


def test_bf16_autocast_forward_on_this_device():
    device = pick_device()
    model = NLMM(small_config()).to(device)
    batch = {k: v.to(device) for k, v in inputs().items()}
    with autocast("bf16", device):
        out = model(batch)
    assert all(torch.isfinite(e).all() for e in out.embeddings.values())


def test_shipped_presets_build():
    for name in ("tiny", "paper_exact"):
        model = NLMM(load_config(name))
        assert 1e5 < model.num_parameters() < 1e7
