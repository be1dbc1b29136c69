import pytest

from tests.small_model import small_config
from engine.data.dataset import DataSplits
from engine.data.sources import load_source


@pytest.fixture
def small_cfg():
    """A model small enough to train for a few steps in a second or two."""
    cfg = small_config()
    cfg.train.warmup_steps = 2
    cfg.train.eval_every = 1000
    cfg.train.checkpoint_every = 1000
    return cfg


@pytest.fixture(scope="session")
def small_data():
    """40 training and 20 validation items of the built-in set."""
    data = load_source("builtin")
    return DataSplits("builtin-subset", {"train": data.splits["train"][::40], "val": data.splits["val"][::20],
                                         "test": data.splits["test"][::30]}, image_synth=data.image_synth)
