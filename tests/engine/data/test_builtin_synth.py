"""Training draws fresh handwriting from training-split digits only, deterministically."""
import numpy as np

from engine.config import load_config
from engine.data.builtin import BUILTIN_ROOT, load_builtin_manifest
from engine.data.dataset import MultimodalDataset
from engine.data.handwriting import TRAIN_DIGITS, HandwritingSynth
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
