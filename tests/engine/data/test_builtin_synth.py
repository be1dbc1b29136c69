"""Training draws fresh handwriting from training-split digits only, deterministically."""
import numpy as np

from engine.config import load_config
from engine.data.builtin import BUILTIN_ROOT, load_builtin_manifest
from engine.data.dataset import MultimodalDataset
from engine.data.handwriting import MNIST_DIGITS, TRAIN_DIGITS, HandwritingSynth
from engine.data.sources import load_source


def test_shipped_training_digits_are_exactly_the_training_handwriting_samples():
    import json
    manifest = json.loads((BUILTIN_ROOT / "manifest.json").read_text())
    rows = np.load(BUILTIN_ROOT / TRAIN_DIGITS)
    assert len(rows) == len(manifest["handwriting_samples"]["train"])
    held_out = set(manifest["handwriting_samples"]["test"]) | set(manifest["handwriting_samples"]["val"])
    assert not held_out & set(manifest["handwriting_samples"]["train"])
    assert set(rows[:, 0].tolist()) == set(range(10)) and rows[:, 1:].max() <= 16


def test_drawn_numbers_look_like_the_stored_ones_and_are_deterministic():
    synth = HandwritingSynth(BUILTIN_ROOT / TRAIN_DIGITS)
    a = synth(42, np.random.default_rng([0, 1, 2]))
    b = synth(42, np.random.default_rng([0, 1, 2]))
    assert a.shape == (32, 64) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert a.mean() < 128 and a.max() > 200  # light writing on a dark ground, like the shipped images
    assert not np.array_equal(a, synth(42, np.random.default_rng([0, 1, 3])))


def test_training_dataset_draws_images_by_epoch_and_index():
    cfg = load_config("tiny")
    data = load_source("builtin")
    items = data.splits["train"][:8]
    dataset = MultimodalDataset(items, cfg, image_synth=data.image_synth, synth_prob=1.0, seed=3)
    first = dataset[5]["image"]
    assert first.shape == (1, 32, 64)
    assert (dataset[5]["image"] == first).all()
    dataset.epoch = 1
    assert not (dataset[5]["image"] == first).all()
    assert (MultimodalDataset(items, cfg)[5]["image"] != first).any()  # the stored image differs


def test_mnist_samples_ship_as_balanced_uci_like_training_digits():
    rows = np.load(BUILTIN_ROOT / MNIST_DIGITS)
    uci = np.load(BUILTIN_ROOT / TRAIN_DIGITS)
    assert rows.shape == (5000, 65) and rows.dtype == np.uint8
    assert np.bincount(rows[:, 0], minlength=10).tolist() == [500] * 10 and rows[:, 1:].max() <= 16
    samples = rows[:, 1:].reshape(-1, 8, 8)
    # made as UCI made its own: the digit fills the 8 x 8 box on its longer side, with as much ink
    fills = [max(np.count_nonzero(s.any(axis=1)), np.count_nonzero(s.any(axis=0))) for s in samples]
    assert fills.count(8) >= 0.99 * len(fills)   # (a lone stray pixel at the crop's edge can fade out)
    assert abs(samples.mean() - uci[:, 1:].mean()) < 0.1 * uci[:, 1:].mean()


def test_each_drawn_number_takes_its_digits_from_one_source_chosen_evenly(tmp_path):
    real = np.load(BUILTIN_ROOT / TRAIN_DIGITS)
    blank = real.copy()
    blank[:, 1:] = 0   # a second source whose samples carry no ink
    np.save(tmp_path / "blank.npy", blank)
    synth = HandwritingSynth(BUILTIN_ROOT / TRAIN_DIGITS, tmp_path / "blank.npy")
    rng = np.random.default_rng(7)
    drawn = [synth(57, rng) for _ in range(200)]
    empty = sum(image.max() == 0 for image in drawn)
    assert 70 <= empty <= 130   # about half the numbers come from each source
    # both digits of a number come from the same source: a number is all ink-free or inked on both halves
    assert all(image.max() == 0 or (image[:, :32].max() > 0 and image[:, 32:].max() > 0) for image in drawn)
