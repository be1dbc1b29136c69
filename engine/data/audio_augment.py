"""Speech as a microphone hears it, made from clean synthetic clips at training time.

A training clip is clean studio-quality synthesis; a user speaks into a laptop in a room. Each training
sample therefore goes through a random chain (every step optional, all randomness from one generator
seeded by (seed, epoch, index), so a resumed run sees the same samples as an uninterrupted one):

  speed      0.85-1.15x by resampling: tempo, pitch and formants move together (another speaker)
  room tone  quiet noise before and after the word, as a recording has
  room       convolution with a simulated room impulse response (resources/builtin/rirs.npz)
  device     a phone band (300-3400 Hz, 8 kHz) or a laptop microphone's roll-off
  noise      white, pink or brown noise, or babble made of other training clips, at 0-30 dB SNR
  level      gain, and sometimes clipping
and on the log-mel: a vocal-tract-length warp of the mel axis and SpecAugment time and band masks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.data.dsp import band_limit, convolve, resample

RIRS_FILE = "rirs.npz"  # train: (rooms, samples) float16; train_lengths: (rooms,)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)


def mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    signal = float(np.mean(wave ** 2)) + 1e-12
    noise = noise[: len(wave)]
    return wave + noise * np.sqrt(signal / (10 ** (snr_db / 10)) / (float(np.mean(noise ** 2)) + 1e-12))


class SpeechAugment:
    def __init__(self, sample_rate: int, rooms: list[np.ndarray] | None = None, max_samples: int | None = None):
        self.rate, self.rooms, self.max_samples = sample_rate, rooms or [], max_samples

    @classmethod
    def from_folder(cls, root: str | Path, sample_rate: int, max_samples: int | None = None) -> "SpeechAugment":
        path, rooms = Path(root) / RIRS_FILE, []
        if path.is_file():
            with np.load(path) as data:
                rooms = [data["train"][i, :n].astype(np.float32) for i, n in enumerate(data["train_lengths"])]
        return cls(sample_rate, rooms, max_samples)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator,
                 other_clip: Callable[[np.random.Generator], np.ndarray] | None = None) -> np.ndarray:
        rate = self.rate
        if rng.random() < 0.6:
            factor = int(rng.integers(85, 116))  # played `factor` % as fast
            wave = resample(wave, rate * factor // 100, rate) if factor != 100 else wave
        if rng.random() < 0.5:
            room_left = max(0, (self.max_samples or len(wave) * 2) - len(wave))
            before, after = (int(rng.uniform(0, 0.5) * min(room_left, int(0.4 * rate))) for _ in range(2))
            wave = np.concatenate([np.zeros(before, np.float32), wave, np.zeros(after, np.float32)])
        if self.rooms and rng.random() < 0.4:
            room = self.rooms[int(rng.integers(len(self.rooms)))]
            wet = convolve(wave, room)[: len(wave)]
            dry = rng.uniform(0.0, 0.6)
            wave = dry * wave + (1 - dry) * wet * (np.abs(wave).max() / (np.abs(wet).max() + 1e-9))
        if rng.random() < 0.35:
            if rng.random() < 0.4:  # a phone call: narrow band, 8 kHz
                wave = band_limit(wave, rate, 300.0, 3400.0)
                wave = resample(resample(wave, rate, 8000), 8000, rate)[: len(wave)]
            else:  # a laptop or headset microphone
                wave = band_limit(wave, rate, rng.uniform(80, 300), rng.uniform(3800, 7600))
        if rng.random() < 0.6:
            snr = rng.uniform(0, 30) if rng.random() < 0.7 else rng.uniform(15, 35)
            if other_clip is not None and rng.random() < 0.3:
                babble = np.zeros(len(wave), np.float32)
                for _ in range(int(rng.integers(2, 5))):
                    clip = other_clip(rng)
                    start = int(rng.integers(0, max(1, len(wave) - len(clip) // 2)))
                    piece = clip[: len(wave) - start]
                    babble[start: start + len(piece)] += piece
                wave = mix_at_snr(wave, babble, snr) if babble.any() else wave
            else:
                wave = mix_at_snr(wave, coloured_noise(len(wave), rng.choice([0.0, 1.0, 2.0]), rng), snr)
        wave = wave * 10 ** (rng.uniform(-20, 6) / 20)
        if rng.random() < 0.1:
            limit = rng.uniform(0.3, 0.8) * float(np.abs(wave).max())
            wave = np.clip(wave, -limit, limit)
        return np.ascontiguousarray(wave, dtype=np.float32)


def warp_mel(mel: torch.Tensor, alpha: float) -> torch.Tensor:
    """Vocal-tract-length perturbation on a (n_mels, frames) log-mel: bin i reads bin i * alpha."""
    n = mel.shape[-2]
    pos = (torch.arange(n, dtype=torch.float32) * alpha).clamp(0, n - 1)
    low = pos.floor().long()
    high = (low + 1).clamp(max=n - 1)
    frac = (pos - low)[:, None]
    return mel[..., low, :] * (1 - frac) + mel[..., high, :] * frac


def augment_mel(mel: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """VTLP and SpecAugment (two band masks, two time masks) on a per-utterance normalised log-mel,
    whose mean is 0, so a mask is 0."""
    if rng.random() < 0.5:
        mel = warp_mel(mel, float(rng.uniform(0.9, 1.1)))
    mel = mel.clone()
    n_mels, frames = mel.shape[-2:]
    for _ in range(2):
        if rng.random() < 0.5:
            width = int(rng.integers(1, max(2, n_mels // 8)))
            start = int(rng.integers(0, n_mels - width + 1))
            mel[..., start: start + width, :] = 0.0
        if rng.random() < 0.5 and frames > 10:
            width = int(rng.integers(1, max(2, frames // 10)))
            start = int(rng.integers(0, frames - width + 1))
            mel[..., start: start + width] = 0.0
    return mel
