"""Signal processing in one place: resampling, the mel spectrogram, convolution and filters. The only
module that imports torchaudio, so replacing it (its releases trail torch's) is a change to this file."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torchaudio

# torchaudio's windowed-sinc kernel holds (new/g) x (orig/g + 2 width) values, g = gcd(orig, new): a
# 44 101 Hz clip (16000/44101, nothing cancels) needed 706 M of them, 12.5 GB with its temporaries.
MAX_KERNEL = 1 << 20
LOWPASS_WIDTH, ROLLOFF = 6, 0.99  # torchaudio's defaults, which the kernel size follows


def _kernel_size(ratio: Fraction) -> int:
    new, orig = ratio.numerator, ratio.denominator
    width = math.ceil(LOWPASS_WIDTH * orig / (min(orig, new) * ROLLOFF))
    return new * (orig + 2 * width)


def resampling_ratio(rate: int, new_rate: int) -> Fraction:
    """new_rate / rate, or the closest ratio of small integers whose kernel fits MAX_KERNEL. Every
    common rate (8k … 384k, 11 025 … 352 800) is exact; 44 101 -> 16 000 Hz becomes 160/441 (23 ppm)."""
    exact = Fraction(new_rate, rate)
    ratio, limit = exact, exact.denominator
    while _kernel_size(ratio) > MAX_KERNEL and limit > 1:
        limit = max(1, limit // 2)
        ratio = exact.limit_denominator(limit)
    return ratio


def resample(wave: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited (windowed sinc) resampling of a 1-D waveform; keeps its dtype."""
    ratio = resampling_ratio(rate, new_rate)
    return torchaudio.functional.resample(torch.from_numpy(wave), ratio.denominator, ratio.numerator,
                                          lowpass_filter_width=LOWPASS_WIDTH, rolloff=ROLLOFF).numpy()


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
