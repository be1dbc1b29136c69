"""`nlmm bench ttt`: does test-time training help retrieval on a shifted domain?

The shifted domain, made here from the built-in test split: voices never heard in training, pitched up
(resampling by a factor, so pitch and tempo rise together), with added noise at a fixed SNR. Audio is
the query, the test images the gallery, recall@1 audio->image the measure:

  before      the trained model
  adapt       the unlabelled shifted queries stream through once with adaptation on
  after       the same queries again, against the adapted memory (no further writes)
  clean       the unshifted test queries, before adaptation and after it (it must not hurt them)
"""
from __future__ import annotations

import numpy as np
import torch

from engine.bench.machine import describe, precision_used
from engine.data.audio import load_audio
from engine.data.dataset import Item
from engine.data.dsp import resample
from engine.data.sources import load_source
from engine.retrieval import QUERY_READ_FACTOR, Retriever
from engine.training.evaluate import EmbeddedGallery, recall_at


def shift_domain(wave: np.ndarray, rate: int, semitones: float, snr_db: float, seed: int) -> np.ndarray:
    # Resampling cost grows with rate / gcd(rates): round the source rate to whole kHz (3 semitones ->
    # 19 kHz -> 16 kHz, a factor 1.1875 = +2.97 semitones).
    source_rate = int(round(rate * 2 ** (semitones / 12) / 1000)) * 1000
    shifted = resample(wave, source_rate, rate)
    noise = np.random.default_rng(seed).standard_normal(len(shifted)).astype(np.float32)
    signal_power = float(np.mean(shifted ** 2)) + 1e-12
    noise *= np.sqrt(signal_power / 10 ** (snr_db / 10))
    mixed = shifted + noise
    return (mixed / max(1.0, float(np.abs(mixed).max()))).astype(np.float32)


def run(checkpoint, device: str | None = None, semitones: float = 3.0, snr_db: float = 10.0,
        progress=print) -> dict:
    torch.manual_seed(0)
    retriever = Retriever.from_checkpoint(checkpoint, device)
    items = load_source("builtin").splits["test"]
    retriever.build_gallery([Item(image=i.image, label=i.label, key=i.key) for i in items])
    gallery = retriever.galleries["image"]
    rate = retriever.cfg.audio.sample_rate
    clean = [load_audio(item.audio, rate, QUERY_READ_FACTOR * retriever.cfg.audio.max_seconds) for item in items]
    shifted = [shift_domain(w, rate, semitones, snr_db, seed=i) for i, w in enumerate(clean)]
    labels = torch.tensor([item.label for item in items])

    def recall(waves) -> float:
        rows = retriever.embed_many("audio", [(w, rate) for w in waves])
        queries = EmbeddedGallery("audio", rows, labels, [])
        return recall_at(queries, gallery, ks=(1,))["R@1"]

    retriever.reset_memory()
    clean_before, shifted_before = recall(clean), recall(shifted)
    progress(f"before adapting: shifted R@1 {shifted_before:.3f}, clean R@1 {clean_before:.3f}")
    order = np.random.default_rng(0).permutation(len(shifted))
    for i in order:  # the unlabelled stream
        retriever.embed("audio", (shifted[i], rate), adapt=True)
    shifted_after, clean_after = recall(shifted), recall(clean)
    progress(f"after adapting on {len(order)} shifted queries: shifted R@1 {shifted_after:.3f}, "
             f"clean R@1 {clean_after:.3f}")
    writes = retriever.memory_frame().write_count
    retriever.reset_memory()
    return {"shifted_before": shifted_before, "shifted_after": shifted_after,
            "clean_before": clean_before, "clean_after": clean_after,
            "shift": {"semitones": semitones, "snr_db": snr_db, "voices": "held-out test voices"},
            "memory_writes": int(writes), "queries": len(order),
            "precision": precision_used(retriever.cfg.precision, retriever.device),
            "machine": describe(retriever.device)}
