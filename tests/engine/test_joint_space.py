"""The joint-space map: a linear projection of the gallery, on which a query lands where its embedding does."""
import numpy as np
import pytest
import torch

from engine.joint_space import joint_map
from engine.training.evaluate import EmbeddedGallery
from engine.data.dataset import Item
from engine.events import Hit
from engine.vocabulary import MODALITIES


def _galleries(n=40, d=16, seed=0):
    rng = np.random.default_rng(seed)
    galleries = {}
    for m, modality in enumerate(("image", "text")):
        # two clusters a modality, far apart along one direction: the first axis must separate them
        centre = np.zeros(d)
        centre[m] = 4.0
        x = torch.tensor(rng.normal(size=(n, d)) * 0.3 + centre, dtype=torch.float32)
        items = [Item(image=f"/img/{i}.png") if modality == "image" else Item(text=f"caption {i}", label=i)
                 for i in range(n)]
        galleries[modality] = EmbeddedGallery(modality, x, torch.arange(n), items)
    return galleries


def test_gallery_rows_and_queries_are_placed_by_the_same_projection():
    galleries = _galleries()
    joint = joint_map(galleries)
    assert joint.points.shape == (80, 2) and joint.points.dtype == np.float32
    # rows in the vocabulary's order of modalities: captions first, then images
    assert MODALITIES.index("text") < MODALITIES.index("image")
    assert list(joint.modalities[:40]) == [MODALITIES.index("text")] * 40
    assert list(joint.modalities[40:]) == [MODALITIES.index("image")] * 40
    assert list(joint.labels[:40]) == list(range(40)) and list(joint.labels[40:]) == [-1] * 40
    for row, embedding in ((40, galleries["image"].embeddings[0]), (5, galleries["text"].embeddings[5])):
        np.testing.assert_allclose(joint.place(embedding.numpy()), joint.points[row], atol=1e-5)
    # the clusters lie apart along the first principal direction, which shows most of the variance
    assert abs(joint.points[:40, 0].mean() - joint.points[40:, 0].mean()) > 3.0
    assert 0.5 < joint.explained[0] <= 1.0 and joint.explained[1] < joint.explained[0]


def test_the_same_gallery_gives_the_same_map_and_hits_find_their_points():
    galleries = _galleries()
    a, b = joint_map(galleries), joint_map(galleries)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.row_of(Hit("text", 0.9, 7, "caption 7", None)) == 7
    assert a.row_of(Hit("image", 0.9, None, None, "/img/3.png")) == 43
    assert a.row_of(Hit("audio", 0.9, None, None, "/not/in/this/gallery.wav")) is None


def test_too_small_a_gallery_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 3"):
        joint_map({"text": EmbeddedGallery("text", torch.zeros(2, 8), torch.arange(2), [Item(text="a"), Item(text="b")])})
    with pytest.raises(ValueError, match="empty"):
        joint_map({})
