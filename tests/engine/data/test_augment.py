"""Training-time speech augmentation: the signal maths against references, and determinism per
(seed, epoch, index) so that a resumed run sees the samples an uninterrupted one would."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import load_config
from engine.data.audio_augment import SpeechAugment, augment_mel, coloured_noise, mix_at_snr, warp_mel
from engine.data.builtin import BUILTIN_ROOT
from engine.data.dataset import MultimodalDataset
from engine.data.dsp import band_limit, convolve
from engine.data.sources import load_source

RATE = 16000


def tone(hz: float, seconds: float = 0.5) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE).astype(np.float32)


def test_convolution_equals_the_direct_sum():
    rng = np.random.default_rng(0)
    wave, kernel = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(137).astype(np.float32)
    assert np.allclose(convolve(wave, kernel), np.convolve(wave, kernel), atol=1e-4)


def test_band_limit_keeps_speech_band_and_cuts_outside_it():
    def gain(hz):
        x = tone(hz)
        return np.sqrt(np.mean(band_limit(x, RATE, 300.0, 3400.0)[4000:] ** 2) / np.mean(x[4000:] ** 2))
    assert gain(1000) > 0.9
    assert gain(60) < 0.1 and gain(7000) < 0.35


def test_coloured_noise_has_the_asked_spectral_slope():
    for exponent in (0.0, 1.0, 2.0):
        noise = coloured_noise(1 << 16, exponent, np.random.default_rng(1))
        power = np.abs(np.fft.rfft(noise)) ** 2
        f = np.fft.rfftfreq(len(noise))
        band = (f > 1e-3) & (f < 0.3)
        slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
        assert slope == pytest.approx(-exponent, abs=0.15)


def test_noise_is_mixed_at_the_asked_snr():
    speech = tone(440)
    noise = coloured_noise(len(speech), 1.0, np.random.default_rng(2))
    for snr in (0.0, 10.0):
        mixed = mix_at_snr(speech, noise, snr)
        residual = mixed - speech
        assert 10 * np.log10(np.mean(speech ** 2) / np.mean(residual ** 2)) == pytest.approx(snr, abs=1e-3)


def test_vocal_tract_warp_is_the_identity_at_one_and_moves_energy_otherwise():
    mel = torch.zeros(80, 10)
    mel[40] = 1.0
    assert torch.equal(warp_mel(mel, 1.0), mel)
    assert int(warp_mel(mel, 1.1).sum(dim=1).argmax()) < 40 < int(warp_mel(mel, 0.9).sum(dim=1).argmax())


def test_the_chain_is_deterministic_per_generator_and_keeps_the_clip_usable():
    augment = SpeechAugment.from_folder(BUILTIN_ROOT, RATE, max_samples=2 * RATE)
    clip = load_source("builtin").splits["train"][0].audio
    from engine.data.audio import load_audio
    wave = load_audio(clip, RATE, 2.0)
    outputs = [augment(wave, np.random.default_rng([0, 0, k])) for k in range(30)]
    again = [augment(wave, np.random.default_rng([0, 0, k])) for k in range(30)]
    assert all(np.array_equal(a, b) for a, b in zip(outputs, again))
    assert len({a.tobytes() for a in outputs}) == 30
    for a in outputs:
        assert a.dtype == np.float32 and np.isfinite(a).all() and np.abs(a).max() > 0
        assert len(a) <= 2 * RATE * 1.2
    mel = torch.randn(80, 50)
    assert torch.equal(augment_mel(mel, np.random.default_rng(5)), augment_mel(mel, np.random.default_rng(5)))


def test_training_dataset_augments_clips_by_epoch_and_index():
    cfg = load_config("tiny")
    items = load_source("builtin").splits["train"][:6]
    augment = SpeechAugment.from_folder(BUILTIN_ROOT, RATE, max_samples=int(cfg.audio.max_seconds * RATE))
    dataset = MultimodalDataset(items, cfg, seed=3, audio_augment=augment)
    first = dataset[4]["audio"]
    assert torch.equal(dataset[4]["audio"], first)
    dataset.epoch = 1
    assert not torch.equal(dataset[4]["audio"], first)
    clean = MultimodalDataset(items, cfg)[4]["audio"]
    assert clean.shape[0] == first.shape[0] == cfg.audio.n_mels
