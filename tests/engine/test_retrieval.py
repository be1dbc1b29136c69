"""Queries go through the data set's own collate: many at once embed exactly as one at a time."""
import numpy as np
import pytest
import torch

from engine.data.errors import DataError
from engine.data.sources import load_source
from engine.paths import DEFAULT_CHECKPOINT
from engine.retrieval import Retriever


@pytest.fixture(scope="module")
def retriever():
    retriever = Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")
    retriever.cfg.precision = "fp32"    # batched and single bf16 matmuls round differently
    return retriever


def test_embed_many_pads_like_one_query_at_a_time(retriever):
    test = load_source("builtin").splits["test"]
    rate = retriever.cfg.audio.sample_rate
    waves = [0.1 * np.sin(np.arange(n) / (3 + i)).astype(np.float32) for i, n in enumerate((4000, 9000, 16000))]
    cases = {"text": ["seven", "the number forty two", "42"],            # 1, 4 and 1 tokens: padded rows
             "audio": [(wave, rate) for wave in waves] + [test[0].audio],   # 3 lengths of log-mel: padded frames
             "image": [test[0].image, test[1].image]}
    for modality, values in cases.items():
        many = retriever.embed_many(modality, values, batch_size=2)     # a batch boundary inside
        one = torch.stack([retriever.embed(modality, value) for value in values])
        assert many.shape == one.shape
        torch.testing.assert_close(many, one, atol=1e-5, rtol=1e-4, msg=modality)


def test_a_query_the_collate_cannot_read_is_a_data_error(retriever):
    with pytest.raises(DataError, match="no words"):
        retriever.embed("text", "?!")
    with pytest.raises(DataError, match="no words"):
        retriever.embed_many("text", ["seven", "..."])


def test_an_image_query_is_the_mean_of_its_shifted_views_and_eval_embeds_it_the_same_way(retriever):
    from engine.query_views import SHIFTS, shifted_views
    from engine.training.evaluate import embed_gallery, item_identity
    image = torch.zeros(1, 1, 32, 64)
    image[0, 0, 10:20, 30:34] = 1.0
    views = shifted_views(torch.cat([image, 1 - image]))
    assert views.shape == (2 * len(SHIFTS), 1, 32, 64)
    for n, (dx, dy) in enumerate(SHIFTS):   # each view is the image moved, the dark ground moving in
        assert torch.equal(views[n, 0, 10 + dy:20 + dy, 30 + dx:34 + dx], torch.ones(10, 4))
        assert views[n].sum() == 40
    assert torch.equal(views[SHIFTS.index((0, 0))], image[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):   # queries are embedded under autocast
        assert torch.equal(shifted_views(torch.cat([image, 1 - image])), views)
    # `nlmm eval` and the robustness bench score image queries as the live query path embeds them
    items = load_source("builtin").splits["test"][:5]
    live = retriever.embed_many("image", [item.image for item in items])
    scored = embed_gallery(retriever.model, items, item_identity(items), "image", retriever.cfg,
                           retriever.tokenizer, retriever.device, as_queries=True).embeddings
    plain = embed_gallery(retriever.model, items, item_identity(items), "image", retriever.cfg,
                          retriever.tokenizer, retriever.device).embeddings
    torch.testing.assert_close(live, scored, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(live, plain, atol=1e-3)   # the gallery keeps one view per image
