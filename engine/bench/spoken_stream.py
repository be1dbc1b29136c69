"""A microphone's worth of speech for hands-free listening: spoken numbers from the built-in test split
(voices training never heard), separated by pauses, over room noise, at 16 kHz.

Used by the listening tests (through a real PortAudio/ALSA device) and `nlmm-studio --bench-ui`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.audio_augment import coloured_noise
from engine.data.utterances import VAD_RATE


@dataclass(frozen=True)
class SpokenStream:
    samples: np.ndarray                 # float32 mono at VAD_RATE
    labels: tuple[int, ...]             # the numbers, in the order spoken
    spans: tuple[tuple[int, int], ...]  # each number's first and last sample of speech (its clip's ink)


def speech_span(clip: np.ndarray, floor_db: float = -40.0) -> tuple[int, int]:
    """First and last sample within `floor_db` of the clip's peak: where the voice is, without the
    synthesiser's leading and trailing silence."""
    loud = np.flatnonzero(np.abs(clip) >= np.abs(clip).max() * 10 ** (floor_db / 20))
    return int(loud[0]), int(loud[-1]) + 1


def spoken_stream(labels: tuple[int, ...] = (42, 7, 93), pause_s: float = 1.0, lead_s: float = 0.8,
                  tail_s: float = 2.0, noise_db: float = -50.0, seed: int = 0) -> SpokenStream:
    """The numbers spoken one after another by different held-out test voices, `pause_s` apart, over pink
    room noise at `noise_db` dBFS (RMS); `tail_s` of room noise after the last one."""
    import soundfile as sf

    from engine.data.builtin import load_builtin_manifest
    rng = np.random.default_rng(seed)
    by_label: dict[int, list] = {}
    for item in load_builtin_manifest()["test"]:
        by_label.setdefault(item.label, []).append(item)
    pieces, spans, at = [np.zeros(int(lead_s * VAD_RATE), np.float32)], [], int(lead_s * VAD_RATE)
    for n, label in enumerate(labels):
        candidates = by_label[label]
        clip, rate = sf.read(str(candidates[int(rng.integers(len(candidates)))].audio), dtype="float32")
        assert rate == VAD_RATE, f"built-in clips are {VAD_RATE} Hz"
        first, last = speech_span(clip)
        clip = clip[first:last]
        spans.append((at, at + len(clip)))
        gap = np.zeros(int((pause_s if n < len(labels) - 1 else tail_s) * VAD_RATE), np.float32)
        pieces += [clip, gap]
        at += len(clip) + len(gap)
    samples = np.concatenate(pieces)
    samples += coloured_noise(len(samples), 1.0, rng) * np.float32(10 ** (noise_db / 20))
    return SpokenStream(samples.astype(np.float32), tuple(labels), tuple(spans))
