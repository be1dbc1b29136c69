"""The joint-space maps: PCA, a linear projection on which a query lands where its embedding does, and the
t-SNE layout, which keeps neighbourhoods PCA loses and places a query among its nearest items."""
import numpy as np
import pytest
import torch

from engine.joint_space import joint_map
from engine.neighbourhood_map import neighbourhood_map, neighbourhood_map_apart, neighbours_kept
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


def _ten_groups(per=30, d=32, seed=1):
    """Ten tight groups (numbers, say) in a 32-D space, each with its caption rows and image rows: two
    principal directions cannot hold ten groups apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, d))
    galleries = {}
    for modality in ("image", "text"):
        x = np.concatenate([c + 0.15 * rng.normal(size=(per, d)) for c in centres])
        labels = np.repeat(np.arange(10), per)
        items = [Item(image=f"/img/{i}.png", label=int(n)) if modality == "image" else Item(text=f"c{i}", label=int(n))
                 for i, n in enumerate(labels)]
        galleries[modality] = EmbeddedGallery(modality, torch.tensor(x, dtype=torch.float32),
                                              torch.tensor(labels), items)
    return galleries


def test_the_neighbourhood_map_keeps_what_pca_loses_and_places_a_query_among_its_group():
    galleries = _ten_groups()
    pca = joint_map(galleries)
    seen = []
    tsne = neighbourhood_map(pca, progress=lambda done, total: seen.append((done, total)))
    assert tsne.method == "tsne" and tsne.points.shape == pca.points.shape and tsne.names == pca.names
    assert seen and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    kept_pca, kept_tsne = neighbours_kept(pca.embeddings, pca.points), neighbours_kept(tsne.embeddings, tsne.points)
    assert kept_tsne > kept_pca + 0.2, (kept_pca, kept_tsne)
    # a new query of group 3 lands among group 3's points, nearer their centre than any other group's
    rng = np.random.default_rng(7)
    query = galleries["image"].embeddings[3 * 30].numpy() + 0.1 * rng.normal(size=32).astype(np.float32)
    where = tsne.place(query)
    centres = np.stack([tsne.points[tsne.labels == n].mean(0) for n in range(10)])
    assert int(np.argmin(np.linalg.norm(centres - where, axis=1))) == 3
    again = neighbourhood_map(pca)
    np.testing.assert_array_equal(again.points, tsne.points)   # seeded: the same gallery, the same map


class Stop(Exception):
    """What a cancelled task's progress raises."""


def _stop_at(reports: int):
    def progress(done, total):
        if done >= reports:
            raise Stop
    return progress


def test_a_neighbourhood_map_stops_when_its_progress_says_so():
    with pytest.raises(Stop):
        neighbourhood_map(joint_map(_ten_groups()), progress=_stop_at(3))


def test_the_map_laid_out_in_a_process_of_its_own_is_the_same_and_stops_when_asked():
    """The t-SNE holds Python's lock for up to 0.1 s at a time: the studio runs it in another process."""
    pca = joint_map(_ten_groups())
    seen = []
    apart = neighbourhood_map_apart(pca, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(apart.points, neighbourhood_map(pca).points)
    assert apart.method == "tsne" and seen and seen[-1][0] == seen[-1][1]

    import multiprocessing
    with pytest.raises(Stop):
        neighbourhood_map_apart(pca, progress=_stop_at(2))
    assert not [p for p in multiprocessing.active_children() if p.name == "nlmm-neighbourhood-map"]
