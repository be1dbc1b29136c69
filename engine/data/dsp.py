"""The signal processing the engine takes from torchaudio, in one place: resampling and the mel
spectrogram. No other module imports torchaudio, so replacing it (its releases trail torch's) is a
change to this file alone."""
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
