"""The signal processing the engine takes from torchaudio, in one place: resampling and the mel
spectrogram. No other module imports torchaudio, so replacing it (its releases trail torch's) is a
change to this file alone."""
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
