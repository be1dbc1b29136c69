"""Shifted domains made from the built-in set's held-out sources and test split: what `nlmm bench
robustness` scores and what `nlmm bench ttt` adapts to. Each is a list of query values (paths, (wave,
rate) pairs or PIL images, as `Retriever.embed_many` takes them) with the number each one shows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.data.audio import load_audio
from engine.data.audio_augment import RIRS_FILE, coloured_noise, mix_at_snr
from engine.data.builtin import BUILTIN_ROOT
from engine.data.dsp import band_limit, convolve, resample
from engine.data.paper import HARSH, photograph


@dataclass(frozen=True)
class Shift:
    name: str
    modality: str   # what the queries are
    values: list
    labels: list[int]

    def every(self, n: int) -> "Shift":
        """Every n-th query (a quicker run over the same conditions)."""
        return Shift(self.name, self.modality, self.values[::n], self.labels[::n])


def recorded_rooms(root=BUILTIN_ROOT) -> list[np.ndarray]:
    """The held-out real room impulse responses (training only simulates rooms)."""
    with np.load(root / RIRS_FILE) as data:
        return [data["heldout"][i, :n].astype(np.float32) for i, n in enumerate(data["heldout_lengths"])]


def clean_waves(test, rate: int) -> list[np.ndarray]:
    return [load_audio(i.audio, rate, 10.0) for i in test]


def reverberant(waves: list[np.ndarray], rate: int) -> list:
    rooms = recorded_rooms()
    out = []
    for k, wave in enumerate(waves):
        room = rooms[k % len(rooms)]
        wet = convolve(wave, room)[: len(wave) + len(room) // 2]
        out.append(((wet / (np.abs(wet).max() + 1e-9)).astype(np.float32), rate))
    return out


def pink_noise(waves: list[np.ndarray], rate: int, snr_db: float) -> list:
    return [(mix_at_snr(w, coloured_noise(len(w), 1.0, np.random.default_rng([int(snr_db), k])), snr_db), rate)
            for k, w in enumerate(waves)]


def phone_band(waves: list[np.ndarray], rate: int) -> list:
    return [(resample(resample(band_limit(w, rate, 300.0, 3400.0), rate, 8000), 8000, rate), rate) for w in waves]


def pitched_with_white_noise(waves: list[np.ndarray], rate: int, semitones: float = 3.0,
                             snr_db: float = 10.0) -> list:
    """Pitch and tempo raised together (resampling) with white noise at `snr_db`. The source rate is
    rounded to whole kHz: resampling cost grows with rate / gcd(rates) (3 semitones -> 19 kHz)."""
    source_rate = int(round(rate * 2 ** (semitones / 12) / 1000)) * 1000
    out = []
    for k, wave in enumerate(waves):
        shifted = resample(wave, source_rate, rate)
        noise = np.random.default_rng(k).standard_normal(len(shifted)).astype(np.float32)
        noise *= np.sqrt((float(np.mean(shifted ** 2)) + 1e-12) / 10 ** (snr_db / 10))
        mixed = shifted + noise
        out.append(((mixed / max(1.0, float(np.abs(mixed).max()))).astype(np.float32), rate))
    return out


def harsh_photos(test) -> list[Image.Image]:
    """The test split's handwriting as harsh phone photos of paper (steep angle, shadow, blur, JPEG)."""
    return [photograph(np.asarray(Image.open(i.image).convert("L")), np.random.default_rng([9, k]), HARSH)
            for k, i in enumerate(test)]


RENDERS_PER_NUMBER = 2   # of each held-out hand and stroke family: 200 queries, one point of top-1 = 2 queries


def _numbers(renders: int, every: int) -> list[int]:
    """Every number `renders` times in a row, then every n-th of those."""
    from engine.data.builtin import NUM_LABELS
    return [label for label in range(NUM_LABELS) for _ in range(renders)][::every]


def heldout_handwriting(renders: int = RENDERS_PER_NUMBER, every: int = 1) -> dict[str, tuple[list, list[int]]]:
    """Per held-out handwriting group (resources/builtin/handwriting.npz), every number written `renders`
    times in a random font of the group, as training writes its own groups: group -> (images, labels).
    `every`: only every n-th of those (a quicker run)."""
    from engine.data.handwritten_fonts import handwriting_fonts, write
    groups: dict[str, list[np.ndarray]] = {}
    for group, atlas in handwriting_fonts("heldout").values():
        groups.setdefault(group, []).append(atlas)
    out = {}
    for g, (group, atlases) in enumerate(sorted(groups.items())):
        rng = np.random.default_rng([11, g])
        labels = _numbers(renders, every)
        out[group] = ([Image.fromarray(write(label, atlases[int(rng.integers(len(atlases)))], rng), "L")
                       for label in labels], labels)
    return out


def heldout_pad_drawings(renders: int = RENDERS_PER_NUMBER, every: int = 1) -> dict[str, tuple[list, list[int]]]:
    """Per held-out stroke family, every number drawn `renders` times on the sketch pad (made-up pen
    trajectories, rendered by the pad's renderer): family -> (images, labels). `every`: every n-th only."""
    from engine.data.sketched import stroke_families
    from engine.data.trajectories import PenSynth
    families = stroke_families("heldout")
    out = {}
    for f, family in enumerate(sorted(families)):
        pad, rng = PenSynth({family: families[family]}), np.random.default_rng([12, f])
        labels = _numbers(renders, every)
        out[family] = ([pad(label, rng) for label in labels], labels)
    return out
