"""The model's own training step: levels keep their cadence inside NLMM, and the loss goes down."""
import torch

from engine.device import pick_device
from engine.models.nlmm import NLMM
from engine.training.step import TrainStep, synthetic_batch
from tests.small_model import small_config as _small


def small_config():
    return _small(slow_chunk=4, fast_lr=1e-3)


def test_cms_levels_of_the_model_step_on_their_own_cadence():
    cfg = small_config()
    device = pick_device("cpu")
    model = NLMM(cfg)
    step = TrainStep(model, cfg, device)
    groups = model.level_parameters()
    for t in range(1, 10):
        batch, labels = synthetic_batch(cfg, 8, device, seconds=0.5, seed=t)
        before = {name: [p.detach().clone() for p in params] for name, params in groups.items()}
        result = step(batch, labels)
        moved = {name: any(not torch.equal(a, p) for a, p in zip(before[name], params))
                 for name, params in groups.items()}
        assert result.step == t
        assert result.stepped_levels == (["fast", "slow"] if t % 4 == 0 else ["fast"])
        assert moved == {"fast": True, "slow": t % 4 == 0}, f"step {t}"


def test_loss_decreases_on_a_repeated_batch():
    cfg = small_config()
    device = pick_device("cpu")
    model = NLMM(cfg)
    step = TrainStep(model, cfg, device)
    batch, _ = synthetic_batch(cfg, 8, device, seconds=0.5)
    losses = [step(batch).loss for _ in range(25)]  # labels None: item i pairs with item i
    assert losses[-1] < 0.5 * losses[0]


def test_optional_decoders_add_an_auxiliary_loss_that_trains_them():
    cfg = small_config()
    cfg.train.decoder_weight = 0.5
    device = pick_device("cpu")
    model = NLMM(cfg)
    assert model.decoders is not None and NLMM(small_config()).decoders is None
    step = TrainStep(model, cfg, device)
    batch, labels = synthetic_batch(cfg, 8, device, seconds=0.5)
    first = step(batch, labels)
    assert "decoders" in first.pair_losses and first.pair_losses["decoders"] > 0
    decoder_losses = [step(batch, labels).pair_losses["decoders"] for _ in range(15)]
    assert decoder_losses[-1] < first.pair_losses["decoders"]
