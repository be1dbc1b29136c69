"""Audio loading and log-mels: odd files work, bad files are one-line DataErrors naming the file."""
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.config import AudioConfig
from engine.data.audio import LogMel, load_audio, trim_silence
from engine.data.errors import DataError

RATE = 16000


def tone(seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


@pytest.mark.parametrize("subtype,rate,channels", [("PCM_16", 16000, 1), ("PCM_U8", 8000, 1), ("PCM_24", 44100, 2),
                                                   ("PCM_32", 22050, 3), ("FLOAT", 48000, 1)])
def test_any_rate_channels_and_sample_type_become_16k_mono_float(tmp_path, subtype, rate, channels):
    path = tmp_path / "clip.wav"
    sf.write(path, tone(0.5, rate, channels), rate, subtype=subtype)
    wave = load_audio(path, RATE)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - RATE // 2) <= 2
    assert 0.3 < np.abs(wave).max() <= 1.0


@pytest.mark.parametrize("fmt,ext", [("FLAC", "flac"), ("OGG", "ogg")])
def test_compressed_formats(tmp_path, fmt, ext):
    path = tmp_path / f"clip.{ext}"
    sf.write(path, tone(0.3), RATE, format=fmt)
    assert abs(len(load_audio(path, RATE)) - int(0.3 * RATE)) < 400


def test_ten_minute_clip_reads_only_what_the_model_uses(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(tone(1.0), 600), RATE, subtype="PCM_16")
    start = time.perf_counter()
    wave = load_audio(path, RATE, max_seconds=2.0)
    assert len(wave) == 2 * RATE
    assert time.perf_counter() - start < 2.0  # not a speed target: "does not decode 10 minutes"


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not a readable audio file"),
    (lambda p: sf.write(p, np.zeros(RATE, dtype=np.float32), RATE), "silent"),
    (lambda p: sf.write(p, np.full(100, np.nan, dtype=np.float32), RATE, subtype="FLOAT"), "NaN"),
    (lambda p: sf.write(p, np.zeros((0,), dtype=np.float32), RATE), "empty audio"),
])
def test_bad_audio_is_a_one_line_data_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError) as info:
        load_audio(path, RATE)
    text = str(info.value)
    assert str(path) in text and message in text and "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_audio(tmp_path / "nope.wav", RATE)


def test_truncated_wav_loads_what_is_there_or_says_so(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(1.0), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        wave = load_audio(path, RATE)
    except DataError as err:
        assert str(path) in str(err)
    else:
        assert 0 < len(wave) <= RATE


def test_log_mel_shape_dtype_and_gain_invariance():
    cfg = AudioConfig()
    log_mel = LogMel(cfg)
    wave = torch.from_numpy(tone(1.0)) + 0.01 * torch.randn(RATE)
    mel = log_mel(wave)
    assert mel.shape == (80, RATE // cfg.hop_length + 1) and mel.dtype == torch.float32
    assert log_mel.n_frames(RATE) == mel.shape[-1]
    assert (log_mel(wave * 0.1) - mel).abs().mean() < 0.02  # a quieter microphone, the same features


def test_trim_silence_cuts_room_noise_around_speech():
    rng = np.random.default_rng(0)
    quiet = 0.001 * rng.standard_normal(RATE).astype(np.float32)
    clip = np.concatenate([quiet, tone(0.5), quiet])
    trimmed = trim_silence(clip, RATE)
    assert 0.5 * RATE <= len(trimmed) <= 0.5 * RATE + 0.2 * RATE
