"""Audio decoding under generated and damaged files: 16 kHz mono float32 within the length asked, or a
one-line DataError naming the file."""
import io

import numpy as np
import soundfile as sf
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.config import AudioConfig
from engine.data.audio import LogMel, load_audio, prepare_waveform
from engine.data.errors import DataError
from tests.fuzz.conftest import one_line

RATE = 16000
LOG_MEL = LogMel(AudioConfig())
CONTENTS = ("tone", "noise", "silence", "nan", "inf", "clipped", "dc")
FORMATS = {"WAV": ["PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT", "DOUBLE", "ULAW", "ALAW"],
           "FLAC": ["PCM_16", "PCM_24", "PCM_S8"], "OGG": ["VORBIS"], "AIFF": ["PCM_16", "FLOAT"]}


def samples(content: str, frames: int, channels: int, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / rate
    data = {"tone": lambda: 0.5 * np.sin(2 * np.pi * 440 * t),
            "noise": lambda: rng.normal(0, 0.3, (frames, 1)),
            "silence": lambda: np.zeros((frames, 1)),
            "nan": lambda: np.full((frames, 1), np.nan),
            "inf": lambda: np.where(rng.random((frames, 1)) < 0.5, np.inf, 0.1),
            "clipped": lambda: np.sign(np.sin(2 * np.pi * 50 * t)) * 4.0,
            "dc": lambda: np.full((frames, 1), 0.25)}[content]()
    return np.repeat(data, channels, axis=1).astype(np.float32)


def check(path, max_seconds: float, sample_rate: int = RATE) -> None:
    """The property: a usable waveform (and log-mel), or a one-line DataError naming the file."""
    try:
        wave = load_audio(path, sample_rate, max_seconds)
    except DataError as err:
        assert one_line(str(err)) and str(path) in str(err), str(err)
        return
    assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
    assert 0 < len(wave) <= max_seconds * sample_rate * 1.01 + 64
    mel = LOG_MEL(torch.from_numpy(wave))
    assert torch.isfinite(mel).all()


@settings(max_examples=240)
@given(fmt=st.sampled_from(sorted(FORMATS)), data=st.data(),
       rate=st.one_of(st.sampled_from([8000, 11025, 22050, 44100, 44101, 48000, 96001, 192000]),
                      st.integers(1, 800_000)),
       channels=st.one_of(st.integers(1, 3), st.integers(4, 80)), frames=st.integers(0, 6000),
       content=st.sampled_from(CONTENTS), max_seconds=st.floats(0.05, 3.0), seed=st.integers(0, 2**16))
def test_generated_files_decode_or_say_why(scratch, fmt, data, rate, channels, frames, content, max_seconds, seed):
    subtype = data.draw(st.sampled_from(FORMATS[fmt]))
    # Only float files hold NaN or infinity; libsndfile crashes converting them to u-law (not our decoder)
    assume(content not in ("nan", "inf") or subtype in ("FLOAT", "DOUBLE"))
    path = scratch / f"clip.{fmt.lower()}"
    try:
        sf.write(path, samples(content, frames, channels, rate, seed), rate, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, ValueError, RuntimeError, TypeError, AssertionError):
        assume(False)  # a combination libsndfile itself cannot write: nothing to read back
    check(path, max_seconds)


def _valid_wav() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples("tone", 8000, 2, 22050, 0), 22050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


VALID_WAV = _valid_wav()


@settings(max_examples=300)
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID_WAV) - 1), st.integers(0, 255)), max_size=12),
       cut=st.integers(0, len(VALID_WAV)), header_only=st.booleans())
def test_damaged_wav_files_decode_or_say_why(scratch, edits, cut, header_only):
    data = bytearray(VALID_WAV[:cut])
    for where, value in edits:
        where = where % 64 if header_only else where  # the header (rate, channels, sizes) or anywhere
        if where < len(data):
            data[where] = value
    path = scratch / "damaged.wav"
    path.write_bytes(bytes(data))
    check(path, 2.0)


@settings(max_examples=80)
@given(blob=st.binary(max_size=3000), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ""]))
def test_random_bytes_are_a_one_line_error(scratch, blob, suffix):
    path = scratch / f"noise{suffix}"
    path.write_bytes(blob)
    check(path, 2.0)


@settings(max_examples=120)
@given(dtype=st.sampled_from([np.int8, np.int16, np.int32, np.uint8, np.float16, np.float32, np.float64, np.bool_]),
       shape=st.one_of(st.tuples(st.integers(0, 5000)), st.tuples(st.integers(0, 3000), st.integers(0, 70)),
                       st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))),
       rate=st.integers(-5, 900_000), seed=st.integers(0, 2**16))
def test_recorded_arrays_of_any_type_and_shape_prepare_or_say_why(dtype, shape, rate, seed):
    """What the studio hands over from a microphone (or a caller of the engine): any array, any rate."""
    raw = np.random.default_rng(seed).normal(0, 0.3, shape)
    array = (raw * 100).astype(dtype) if np.issubdtype(dtype, np.integer) else raw.astype(dtype)
    try:
        wave = prepare_waveform(array, rate, RATE, "recording")
    except DataError as err:
        assert one_line(str(err)) and str(err).startswith("recording: ")
        return
    assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all() and len(wave) > 0
