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


def test_a_signature_is_the_mean_and_10th_percentile_of_each_bin_over_the_frames_each_row_has():
    g = torch.Generator().manual_seed(3)
    mel = torch.randn(5, 8, 40, generator=g)
    lengths = torch.tensor([40, 1, 2, 17, 33])
    mask = torch.arange(40)[None] < lengths[:, None]
    signatures = DomainMemory._signatures(mel, mask)
    for row, length in enumerate(lengths.tolist()):
        frames = mel[row, :, :length]   # what torch's own reductions give on the real frames only
        expected = torch.cat([frames.mean(-1), frames.quantile(0.1, dim=-1)])
        assert torch.allclose(signatures[row], expected, atol=1e-6), row
    assert torch.allclose(DomainMemory._signatures(mel, None)[0],
                          torch.cat([mel[0].mean(-1), mel[0].quantile(0.1, dim=-1)]), atol=1e-6)


def test_training_statistics_are_those_of_every_real_frame_of_the_batch_together():
    g = torch.Generator().manual_seed(4)
    mel = torch.randn(3, 8, 30, generator=g) * 2 + 1
    mask = torch.arange(30)[None] < torch.tensor([30, 5, 12])[:, None]
    memory = DomainMemory(8).train()
    memory(mel, mask)   # the first batch sets the statistics outright
    frames = torch.cat([mel[row, :, :length].T for row, length in enumerate([30, 5, 12])])
    assert torch.allclose(memory.train_mean, frames.mean(0), atol=1e-5)
    assert torch.allclose(memory.train_var, frames.var(0), atol=1e-5)
