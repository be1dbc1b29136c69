"""Recall@k against a brute-force reference, and exact fractions (a target of 0.90 is met by 9 of 10)."""
import numpy as np
import torch

from engine.training.evaluate import EmbeddedGallery, recall_at


def brute_force(q, g, q_ids, g_ids, k):
    hits = 0
    for row, qid in zip(q, q_ids):
        ranked = sorted(range(len(g)), key=lambda j: -float(np.dot(row, g[j])))[:k]
        hits += any(g_ids[j] == qid for j in ranked)
    return hits / len(q)


def test_recall_matches_a_brute_force_ranking():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(40, 8)), rng.normal(size=(30, 8))
    q_ids, g_ids = rng.integers(0, 12, 40), rng.integers(0, 12, 30)
    got = recall_at(EmbeddedGallery("image", torch.tensor(q), torch.tensor(q_ids), []),
                    EmbeddedGallery("text", torch.tensor(g), torch.tensor(g_ids), []))
    for k in (1, 5, 10):
        assert got[f"R@{k}"] == brute_force(q, g, q_ids, g_ids, k)


def test_nine_of_ten_is_exactly_ninety_percent():
    g = torch.eye(10)
    q = torch.eye(10)
    q_ids, g_ids = torch.arange(10), torch.arange(10)
    g_ids[9] = 99                    # the last query's item is missing: 9 hits of 10 at every k <= 9
    got = recall_at(EmbeddedGallery("image", q, q_ids, []), EmbeddedGallery("text", g, g_ids, []), ks=(1, 5))
    assert got["R@1"] == got["R@5"] == 0.9 and got["R@1"] >= 0.90
