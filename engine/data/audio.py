"""Audio in: any file soundfile reads (WAV, FLAC, Ogg, MP3), any rate, channels or sample type.
Audio out: 16 kHz mono float32, cut to the config's length, then an 80-bin log-mel (engine.data.dsp).

Every failure is a one-line `DataError` naming the file and the problem.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from engine.config import AudioConfig
from engine.data.dsp import mel_spectrogram, resample
from engine.data.errors import DataError, file_problem, first_line

SILENCE_PEAK = 1e-4  # below this a clip holds nothing to hear (int16 LSB is 3e-5)
RATES = (1000, 768_000)   # sample rates accepted, in Hz: below, nothing is speech; above, no recorder goes
MAX_CHANNELS = 64         # what is read is seconds x rate x channels: a header may claim 65 535 channels
MIN_SECONDS = 0.05        # shorter than this holds no word (a 300-sample clip at 44.1 kHz is 7 ms)


def load_audio(path: str | Path, sample_rate: int, max_seconds: float) -> np.ndarray:
    """Decode, mix down to mono and resample. Reads at most `max_seconds` (a 2-hour file costs no
    more than its first seconds)."""
    path = Path(path)
    problem = file_problem(path, "audio file")
    if problem:
        raise DataError(f"{path}: {problem}")
    try:
        with sf.SoundFile(str(path)) as handle:
            rate, frames, channels = handle.samplerate, handle.frames, handle.channels
            _check_format(rate, channels, str(path))
            data = handle.read(frames=min(frames, int(math.ceil(max_seconds * rate))), dtype="float32",
                               always_2d=True)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        if not path.exists():
            raise DataError(f"{path}: file not found") from None
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)") from None
        raise DataError(f"{path}: not a readable audio file ({first_line(err)})") from None
    return prepare_waveform(data, rate, sample_rate, str(path))


def _check_format(rate: int, channels: int, name: str) -> None:
    if not RATES[0] <= rate <= RATES[1]:
        raise DataError(f"{name}: sample rate {rate} Hz is outside {RATES[0]}-{RATES[1]} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise DataError(f"{name}: {channels} channels (at most {MAX_CHANNELS})")


FAR_BEYOND_FULL_SCALE = 1e3


def prepare_waveform(data: np.ndarray, rate: int, sample_rate: int, name: str = "audio") -> np.ndarray:
    """(frames,) or (frames, channels) samples of any numeric type -> mono float32 at `sample_rate`."""
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise DataError(f"{name}: expected (frames, channels) samples, got shape {data.shape}")
    _check_format(rate, data.shape[1], name)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    elif not np.issubdtype(data.dtype, np.floating):
        raise DataError(f"{name}: samples must be numbers, got {data.dtype}")
    data = data.astype(np.float32, copy=False)
    if data.shape[0] == 0:
        raise DataError(f"{name}: empty audio (0 samples)")
    if not np.isfinite(data).all():
        raise DataError(f"{name}: audio contains NaN or infinite samples")
    if data.shape[0] < MIN_SECONDS * rate:
        raise DataError(f"{name}: audio too short ({1000 * data.shape[0] / rate:.1f} ms; "
                        f"at least {1000 * MIN_SECONDS:.0f} ms)")
    peak = float(np.abs(data).max(initial=0.0))
    # Float files may hold any scale (x1e30 overflowed every square to infinity): far beyond full scale, the
    # clip is brought back to it (the log-mel normalises each clip's level anyway; a codec's slight
    # overshoot of 1.0 is left as it is, so that the built-in clips read exactly as before).
    mono = (data / np.float32(peak) if peak > FAR_BEYOND_FULL_SCALE else data).mean(axis=1)
    if rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
    if np.abs(mono).max(initial=0.0) < SILENCE_PEAK:
        raise DataError(f"{name}: audio is silent (peak below {SILENCE_PEAK:g})")
    return np.ascontiguousarray(mono, dtype=np.float32)


def trim_silence(wave: np.ndarray, sample_rate: int, threshold_db: float = -35.0, pad_ms: float = 60.0) -> np.ndarray:
    """Cut leading and trailing frames quieter than `threshold_db` below the clip's peak (a microphone
    recording starts and ends with room noise that the model never heard in training)."""
    hop = max(1, sample_rate // 100)
    n = len(wave) // hop
    if n < 3:
        return wave
    rms = np.sqrt((wave[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > threshold_db)[0]
    if not len(loud):     # no frame stands out (a level the squares cannot hold): nothing to cut
        return wave
    pad = int(pad_ms * sample_rate / 1000)
    start, end = max(0, loud[0] * hop - pad), min(len(wave), (loud[-1] + 1) * hop + pad)
    return wave[start:end]


def fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut to at most `n_samples` (padding happens in the collate, with a mask)."""
    return wave[:n_samples]


class LogMel(torch.nn.Module):
    """Waveform (..., samples) -> per-utterance normalised log-mel (..., n_mels, frames).

    Normalising each clip by its own mean and spread makes the features independent of recording
    gain, which matters when a laptop microphone meets a model trained on synthetic speech.
    """

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.mel = mel_spectrogram(cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels)
        self.hop_length, self.n_fft = cfg.hop_length, cfg.n_fft

    def n_frames(self, n_samples: int) -> int:
        return max(n_samples, self.n_fft) // self.hop_length + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] < self.n_fft:  # the STFT's centring pads n_fft/2 by reflection: more than it holds
            wave = torch.nn.functional.pad(wave, (0, self.n_fft - wave.shape[-1]))
        log_mel = torch.log(self.mel(wave.float()) + 1e-6)
        mean = log_mel.mean(dim=(-2, -1), keepdim=True)
        std = log_mel.std(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
        return (log_mel - mean) / std
