"""The audio domain memory: learns the training statistics, adapts to a shifted stream, leaves clean
queries alone, forgets on reset."""
import torch

from engine.layers.domain_memory import DomainMemory


def clean_batch(n=16, frames=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, frames, generator=g) * torch.linspace(0.5, 1.5, 8)[None, :, None]


def shifted(mel):
    return mel * 0.5 + 2.0  # a raised floor and squashed dynamics, as noise does to log-mels


def trained_memory():
    memory = DomainMemory(8).train()
    for seed in range(30):
        memory(clean_batch(seed=seed))
    return memory.eval()


def test_training_learns_the_per_bin_statistics():
    memory = trained_memory()
    assert torch.allclose(memory.train_mean, torch.zeros(8), atol=0.15)
    assert torch.allclose(memory.train_var.sqrt(), torch.linspace(0.5, 1.5, 8), rtol=0.15)


def test_adapting_on_a_shifted_stream_renormalises_it_and_leaves_clean_queries_alone():
    memory = trained_memory()
    stream = shifted(clean_batch(seed=99))
    assert torch.equal(memory(stream), stream)  # nothing learnt yet, not adapting: untouched
    memory.adapting = True
    for row in stream:
        memory(row[None])
    memory.adapting = False
    described = memory.describe()
    assert len(memory.slots) == 1 and described["domains"][0]["queries"] == 16
    assert described["last_route"] == [1]                      # the last query went to stream domain 1
    assert described["domains"][0]["distance"] > 1.0           # beyond the routing threshold
    assert torch.allclose(torch.from_numpy(described["domains"][0]["offset"]), torch.full((8,), 2.0), atol=0.3)
    fixed = memory(shifted(clean_batch(seed=5)))
    target = clean_batch(seed=5)
    assert (fixed - target).abs().mean() < 0.2 < (shifted(target) - target).abs().mean()
    clean = clean_batch(seed=7)
    assert torch.equal(memory(clean), clean) and memory.last_route == [0] * 16
    memory.reset()
    assert memory.slots == [] and torch.equal(memory(stream), stream)


def test_no_new_domains_without_adaptation():
    memory = trained_memory()
    memory(shifted(clean_batch(seed=3)))
    assert memory.slots == []
