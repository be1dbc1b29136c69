"""How the hands-free cutter's hangover keeps spoken numbers whole: every third clip of the built-in test
split (400 numbers by voices training never heard), each alone over quiet room noise, cut with tentative
utterances at each hangover. Prints, per hangover, the numbers that did not come out as exactly one
utterance (lost: none; split: more than one) and the tentative answers that were replaced.

    .venv/bin/python scripts/hangover_sweep.py [--hangovers 60 200]
"""
from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf

from engine.bench.spoken_stream import speech_span
from engine.data.audio_augment import coloured_noise
from engine.data.builtin import load_builtin_manifest
from engine.data.utterances import TENTATIVE, UtteranceCutter, WINDOW, load_detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hangovers", type=int, nargs="+", default=[60, 100, 150, 200])
    args = parser.parse_args()
    detector = load_detector()
    rng = np.random.default_rng(0)
    streams = []
    for item in load_builtin_manifest()["test"][::3]:
        clip, rate = sf.read(str(item.audio), dtype="float32")
        first, last = speech_span(clip)
        samples = np.concatenate([np.zeros(rate // 2, np.float32), clip[first:last], np.zeros(rate, np.float32)])
        streams.append(samples + coloured_noise(len(samples), 1.0, rng) * np.float32(10 ** (-50 / 20)))
    for hangover in args.hangovers:
        lost = split = replaced = 0
        for samples in streams:
            cutter = UtteranceCutter(detector=detector, tentative=True, hangover_ms=hangover)
            found = [u for at in range(0, len(samples), WINDOW) for u in cutter.feed(samples[at:at + WINDOW])]
            ended = [u for u in found if u.kind != TENTATIVE]
            lost += not ended
            split += len(ended) > 1
            replaced += sum(u.to_ask for u in found) - len(ended)
        print(f"hangover {hangover:4d} ms: {len(streams)} numbers, lost {lost}, split {split}, "
              f"tentative answers replaced {replaced}")


if __name__ == "__main__":
    main()
