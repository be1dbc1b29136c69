"""Audio loading and log-mels: odd files work, bad files are one-line DataErrors naming the file."""
import re
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.config import AudioConfig
from engine.data.audio import LogMel, load_audio, trim_silence
from engine.data.errors import DataError
from tests.memory_limit import run_capped

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
    wave = load_audio(path, RATE, 10.0)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - RATE // 2) <= 2
    assert 0.3 < np.abs(wave).max() <= 1.0


@pytest.mark.parametrize("fmt,ext", [("FLAC", "flac"), ("OGG", "ogg")])
def test_compressed_formats(tmp_path, fmt, ext):
    path = tmp_path / f"clip.{ext}"
    sf.write(path, tone(0.3), RATE, format=fmt)
    assert abs(len(load_audio(path, RATE, 10.0)) - int(0.3 * RATE)) < 400


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
        load_audio(path, RATE, 10.0)
    text = str(info.value)
    assert str(path) in text and message in text and "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_audio(tmp_path / "nope.wav", RATE, 10.0)


def test_truncated_wav_loads_what_is_there_or_says_so(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(1.0), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        wave = load_audio(path, RATE, 10.0)
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


# ---------------------------------------------------------------- odd files a user may hand over

def test_a_clip_shorter_than_a_word_is_a_one_line_error(tmp_path):
    path = tmp_path / "click.wav"
    sf.write(path, 0.5 * np.sin(np.arange(300) / 5.0), 44100, subtype="PCM_32")  # 300 samples: 6.8 ms
    with pytest.raises(DataError) as info:
        load_audio(path, RATE, 10.0)
    assert str(info.value) == f"{path}: audio too short (6.8 ms; at least 50 ms)"


def test_log_mel_of_a_clip_shorter_than_its_window_is_finite():
    cfg = AudioConfig(n_fft=4096, hop_length=160)  # a 256 ms window: longer than many short clips
    mel = LogMel(cfg)(torch.from_numpy(tone(0.1)))
    assert mel.shape == (80, LogMel(cfg).n_frames(1600)) and torch.isfinite(mel).all()


@pytest.mark.parametrize("rate", [44101, 96001])
def test_odd_sample_rates_resample_in_bounded_memory(tmp_path, rate):
    """torchaudio's kernel grows with rate / gcd(rate, 16000): 44 101 Hz took 12.5 GB, 96 001 Hz one 6 GB
    block. Now within 300 MB more than the imports take, and the clip keeps its length."""
    path = tmp_path / "odd.wav"
    sf.write(path, tone(2.0, rate), rate, subtype="PCM_16")
    code = (f"wave = load_audio({str(path)!r}, 16000, 10.0)\n"
            "print(len(wave), float(abs(wave).max()))\n")
    proc = run_capped("from engine.data.audio import load_audio\n", code, extra_bytes=300 << 20)
    assert proc.returncode == 0, proc.stderr[-2000:]
    length, peak = proc.stdout.split()
    assert abs(int(length) - 2 * RATE) <= 2 and 0.45 < float(peak) < 0.55


@pytest.mark.parametrize("rate,channels,message", [(400, 1, "sample rate 400 Hz is outside 1000-768000 Hz"),
                                                   (16000, 70, "70 channels (at most 64)")])
def test_rates_and_channel_counts_no_recorder_makes_are_refused(tmp_path, rate, channels, message):
    path = tmp_path / "odd.wav"
    sf.write(path, np.full((rate, channels), 0.1, dtype=np.float32), rate, subtype="FLOAT")
    with pytest.raises(DataError, match=re.escape(message)):
        load_audio(path, RATE, 10.0)


@pytest.mark.parametrize("subtype", ["PCM_U8", "ULAW", "ALAW", "DOUBLE", "PCM_24"])
def test_odd_sample_widths_and_many_channels_decode(tmp_path, subtype):
    path = tmp_path / "clip.wav"
    sf.write(path, tone(0.5, 22050, channels=6), 22050, subtype=subtype)
    wave = load_audio(path, RATE, 10.0)
    assert abs(len(wave) - RATE // 2) <= 2 and np.isfinite(wave).all() and 0.3 < np.abs(wave).max() <= 1.0


def test_a_query_reads_no_more_of_a_long_file_than_it_can_use(tmp_path):
    """A query clip used to be read whole (a 2-hour WAV: 2.1 GB of samples) before being cut to the
    model's length. Ten minutes read would be 38 MB of float32; what a query may read is 4 s."""
    from engine.paths import DEFAULT_CHECKPOINT
    from engine.retrieval import Retriever
    retriever = Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")
    path = tmp_path / "lecture.wav"
    sf.write(path, np.tile(tone(1.0), 600), RATE, subtype="PCM_16")
    tracemalloc.start()
    try:
        mel = retriever.sample("audio", path)["audio"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert mel.shape[-1] == retriever.log_mel.n_frames(2 * RATE)
    assert peak < 4 * (4 * RATE * 4)  # a few copies of 4 s of float32 samples, not 10 minutes


@pytest.mark.parametrize("scale", [1e18, 1e30])
def test_a_float_file_at_any_scale_is_heard_like_the_same_clip_at_full_scale(tmp_path, scale):
    """x1e30 was an IndexError in the query (every square overflowed), x1e18 a NaN loss in training."""
    wave = (0.3 * np.sin(np.arange(16000) / 5.0) * np.hanning(16000)).astype(np.float32)
    sf.write(tmp_path / "plain.wav", wave, 16000, subtype="FLOAT")
    sf.write(tmp_path / "huge.wav", wave * np.float32(scale), 16000, subtype="FLOAT")
    plain, huge = (load_audio(tmp_path / name, 16000, 10.0) for name in ("plain.wav", "huge.wav"))
    np.testing.assert_allclose(huge, plain / np.abs(plain).max(), rtol=1e-5, atol=1e-7)   # at full scale
    assert len(trim_silence(huge, 16000)) == len(trim_silence(plain, 16000))
    assert torch.isfinite(LogMel(AudioConfig())(torch.from_numpy(huge))).all()
