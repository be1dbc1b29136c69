"""Signal processing in one place: resampling, the mel spectrogram, convolution and filters. The only
module that imports torchaudio, so replacing it (its releases trail torch's) is a change to this file."""
from __future__ import annotations

import numpy as np
import torch
import torchaudio


def resample(wave: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited (windowed sinc) resampling of a 1-D waveform; keeps its dtype."""
    return torchaudio.functional.resample(torch.from_numpy(wave), rate, new_rate).numpy()


def mel_spectrogram(sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> torch.nn.Module:
    """A module mapping waveforms (..., samples) to mel power spectrograms (..., n_mels, frames)."""
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)


def convolve(wave: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Full linear convolution through the FFT (a room's impulse response on a clip). The transform length
    is rounded up to a power of two: torchaudio's fftconvolve uses the exact length, which is often
    nearly prime and then 10x slower."""
    n = len(wave) + len(kernel) - 1
    size = 1 << (n - 1).bit_length()
    a = torch.fft.rfft(torch.from_numpy(np.ascontiguousarray(wave, np.float32)), size)
    b = torch.fft.rfft(torch.from_numpy(np.ascontiguousarray(kernel, np.float32)), size)
    return torch.fft.irfft(a * b, size)[:n].numpy()


def band_limit(wave: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Second-order high-pass at `low_hz` then low-pass at `high_hz` (a small microphone, a phone line)."""
    x = torch.from_numpy(np.ascontiguousarray(wave, np.float32))
    x = torchaudio.functional.highpass_biquad(x, sample_rate, low_hz)
    x = torchaudio.functional.lowpass_biquad(x, sample_rate, min(high_hz, 0.45 * sample_rate))
    return x.numpy()
