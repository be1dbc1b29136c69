"""`nlmm bench query`: latency of one live query against a 10,000-item gallery.

Each query is timed end to end as the studio runs it: read the file (or take the text), prepare it
(decode, resample, log-mel / ink crop / tokenise), encode, score against every gallery item, top-k.
The gallery is the built-in test split's embeddings, repeated with small perturbations to the size asked.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from engine.data.audio import load_audio
from engine.data.sources import load_source
from engine.retrieval import Retriever


def _grow(gallery, size: int, seed: int = 0) -> None:
    """Repeat a gallery's rows (with small noise) until it holds `size` items."""
    n = len(gallery.ids)
    reps = -(-size // n)
    g = torch.Generator().manual_seed(seed)
    embeddings = gallery.embeddings.repeat(reps, 1)[:size]
    gallery.embeddings = F.normalize(embeddings + 0.05 * torch.randn(embeddings.shape, generator=g), dim=-1)
    gallery.ids = gallery.ids.repeat(reps)[:size]
    gallery.items = (gallery.items * reps)[:size]


def _percentiles(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"p50_ms": statistics.median(ordered), "p99_ms": p99, "n": len(ordered)}


def run(checkpoint, device: str | None = None, gallery_size: int = 10_000, n_queries: int = 100,
        audio_seconds: float = 3.0, progress=print) -> dict:
    torch.manual_seed(0)
    retriever = Retriever.from_checkpoint(checkpoint, device)
    items = load_source("builtin").splits["test"]
    retriever.build_gallery(items)
    for gallery in retriever.galleries.values():
        _grow(gallery, gallery_size)
    progress(f"gallery: {retriever.gallery_sizes()} items per modality on {retriever.device}")
    rate = retriever.cfg.audio.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i, item in enumerate(items[:n_queries]):  # each spoken number padded with room noise to 3 s
            wave = load_audio(item.audio, rate)
            clip = np.random.default_rng(i).normal(0, 0.003, int(audio_seconds * rate)).astype(np.float32)
            start = (len(clip) - len(wave)) // 2
            clip[start:start + len(wave)] += wave[: len(clip)]
            path = Path(tmp) / f"q{i}.wav"
            sf.write(path, clip, rate, subtype="PCM_16")
            clips.append(path)
        queries = {"image": [item.image for item in items[:n_queries]], "audio": clips,
                   "text": [item.text for item in items[:n_queries]]}
        result = {}
        for modality, values in queries.items():
            for value in values[:5]:  # warm-up: first calls allocate and pick kernels
                retriever.query(modality, value, k=5)
            times = [retriever.query(modality, value, k=5).latency_ms for value in values]
            result[modality] = _percentiles(times)
            progress(f"{modality:>5}: p50 {result[modality]['p50_ms']:.1f} ms, p99 {result[modality]['p99_ms']:.1f} ms")
    return {"gallery_size": gallery_size, "device": str(retriever.device), **result}
