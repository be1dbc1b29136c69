"""`nlmm bench robustness`: retrieval on sources the model never trained on, next to the in-domain test.

Every query goes through the live query path (`Retriever.embed_many`: decode, trim, log-mel / ink crop).
Galleries are the built-in test split's images and captions (a hit is an item of the query's label, so
R@1 is the top-1 accuracy). Rows:

  in-domain test            the test split, all six directions (voices and handwriting samples unseen)
  unseen voices: <engine>   test clips of one trained engine, voices training never heard
  engine never trained on   the flite clips (the whole engine is held out); its speakers awb and rms are
                            unseen too, kal and slt were recorded for festival voices training heard
  recorded rooms            test clips convolved with real recorded room responses (training simulated rooms)
  noise 10 / 0 dB SNR       test clips with pink noise
  phone band                test clips through 300-3400 Hz at 8 kHz
  fonts never trained on    numbers printed in held-out font families
  strokes never trained on  numbers drawn in held-out single-stroke families
  handwriting never trained on: <hand>   numbers written in each held-out handwriting group, and their mean
  sketch pad, strokes never trained on: <family>   numbers drawn on the sketch pad (pen trajectories
                            rendered as the pad renders them) in each held-out stroke family
  photographed on paper     test handwriting as harsh phone photos (steep angle, shadow, blur, JPEG)
"""
from __future__ import annotations

import torch

from engine.bench.machine import describe
from engine.bench.result import BenchResult, Target
from engine.bench.shifts import (
    clean_waves, harsh_photos, heldout_handwriting, heldout_pad_drawings, phone_band, pink_noise, reverberant,
)
from engine.data.builtin import load_builtin_manifest, load_heldout
from engine.data.dataset import Item
from engine.retrieval import Retriever
from engine.training.evaluate import EmbeddedGallery, evaluate, recall_at

KS = (1, 5)
NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)
HANDWRITING_ROW, PAD_ROW = "handwriting never trained on: ", "sketch pad, strokes never trained on: "
HANDWRITING_MEAN = HANDWRITING_ROW + "mean"
# top-1 (R@1) a row's direction must reach (docs/benchmarks.md): no step back in-domain, voices and an
# engine never heard, noise, and held-out printing and strokes read as well as the trained ones
TARGETS = {("in-domain test", "image->text"): 0.96, ("in-domain test", "audio->image"): 0.95,
           ("unseen voices: espeak-ng", "audio->image"): 0.90, ("unseen voices: festival", "audio->image"): 0.90,
           ("unseen voices: kokoro", "audio->image"): 0.90, ("engine never trained on: flite", "audio->image"): 0.80,
           ("pink noise 0 dB SNR", "audio->image"): 0.60,
           ("fonts never trained on", "image->text"): 0.97,
           ("stroke families never trained on", "image->text"): 0.97,
           (HANDWRITING_MEAN, "image->text"): 0.92}
# and every held-out hand on its own, every held-out stroke family drawn on the sketch pad
PER_HAND, PER_PAD_FAMILY = 0.85, 0.97


def add_arguments(parser) -> None:
    from engine.cli_args import checkpoint_option
    checkpoint_option(parser)


def recall(retriever: Retriever, modality: str, values: list, labels: list[int], targets=("image", "text")) -> dict:
    rows = retriever.embed_many(modality, values)
    queries = EmbeddedGallery(modality, rows, torch.tensor(labels), [])
    return {f"{modality}->{t}": recall_at(queries, retriever.galleries[t], KS) for t in targets}


def run(checkpoint, device: str | None = None, progress=print, quick: bool = False) -> BenchResult:
    """`quick`: every 10th query of each condition (a check that it runs, not a figure)."""
    torch.manual_seed(0)
    retriever = Retriever.from_checkpoint(checkpoint, device)
    rate = retriever.cfg.audio.sample_rate
    test = load_builtin_manifest()["test"]
    heldout = load_heldout()
    if quick:
        test = test[::10]
        heldout = {name: items[::10] for name, items in heldout.items()}
    retriever.build_gallery([Item(image=i.image, text=i.text, label=i.label, key=str(i.label)) for i in test])
    rows: list[dict] = []

    def add(name: str, kind: str, n: int, recall: dict) -> None:
        rows.append({"condition": name, "kind": kind, "queries": n, "recall": recall})
        main = next(iter(recall))
        progress(f"{name:<42} {main:<12} R@1 {100 * recall[main]['R@1']:5.1f}%  ({n} queries)")

    items = [Item(image=i.image, text=i.text, audio=i.audio, label=i.label, key=str(i.label)) for i in test]
    in_domain = evaluate(retriever.model, items, retriever.cfg, retriever.tokenizer, retriever.device)
    add("in-domain test", "all", len(items), {d: {f"R@{k}": v[f"R@{k}"] for k in KS} for d, v in in_domain.items()})

    for engine in sorted({i.engine for i in test}):
        chosen = [i for i in test if i.engine == engine]
        add(f"unseen voices: {engine}", "speech", len(chosen),
            recall(retriever, "audio", [i.audio for i in chosen], [i.label for i in chosen]))

    flite = heldout["speech_engine"]
    engine_name = flite[0].engine if flite else "?"
    add(f"engine never trained on: {engine_name}", "speech", len(flite),
        recall(retriever, "audio", [i.audio for i in flite], [i.label for i in flite]))
    for speakers, voices in (("unseen speakers", ("awb", "rms")), ("speakers heard via festival", ("kal", "slt"))):
        chosen = [i for i in flite if any(f"-{v}" in i.source for v in voices)]
        add(f"  {engine_name}, {speakers}", "speech", len(chosen),
            recall(retriever, "audio", [i.audio for i in chosen], [i.label for i in chosen]))

    labels = [i.label for i in test]
    waves = clean_waves(test, rate)
    for name, values in (("recorded rooms (reverb)", reverberant(waves, rate)),
                         ("pink noise 10 dB SNR", pink_noise(waves, rate, 10)),
                         ("pink noise 0 dB SNR", pink_noise(waves, rate, 0)),
                         ("phone band (300-3400 Hz, 8 kHz)", phone_band(waves, rate))):
        add(name, "speech", len(values), recall(retriever, "audio", values, labels))

    for key, name in (("fonts", "fonts never trained on"), ("strokes", "stroke families never trained on")):
        chosen = heldout[key]
        add(name, "image", len(chosen), recall(retriever, "image", [i.image for i in chosen],
                                                [i.label for i in chosen], targets=("text",)))
    every, hands, written = 10 if quick else 1, [], 0
    for hand, (images, numbers) in heldout_handwriting(every=every).items():
        hands.append(recall(retriever, "image", images, numbers, targets=("text",)))
        written += len(images)
        add(HANDWRITING_ROW + hand, "image", len(images), hands[-1])
    add(HANDWRITING_MEAN, "image", written,  # each hand counts once, however many fonts it has
        {"image->text": {f"R@{k}": sum(r["image->text"][f"R@{k}"] for r in hands) / len(hands) for k in KS}})
    for family, (images, numbers) in heldout_pad_drawings(every=every).items():
        add(PAD_ROW + family, "image", len(images), recall(retriever, "image", images, numbers, targets=("text",)))
    photos = harsh_photos(test)
    add("handwriting photographed on paper (harsh)", "image", len(photos),
        recall(retriever, "image", photos, labels, targets=("text",)))
    figures = {"checkpoint": str(checkpoint), "gallery": {"images": len(retriever.galleries["image"].ids),
                                                          "captions": len(retriever.galleries["text"].ids)},
               "rows": rows}
    by_condition = {row["condition"]: row["recall"] for row in rows}
    limits = dict(TARGETS) | {(c, "image->text"): PER_HAND for c in by_condition
                              if c.startswith(HANDWRITING_ROW) and c != HANDWRITING_MEAN}
    limits |= {(c, "image->text"): PER_PAD_FAMILY for c in by_condition if c.startswith(PAD_ROW)}
    targets = {f"{condition}: {direction} top-1": Target(limit, by_condition[condition][direction]["R@1"])
               for (condition, direction), limit in limits.items() if condition in by_condition}
    ran = describe(retriever.device, retriever.cfg.precision)
    return BenchResult(NAME, figures, targets, ran, quick)


def from_args(args, progress) -> BenchResult:
    return run(args.checkpoint, args.device, progress=progress, quick=args.quick)


def format_table(result: BenchResult) -> str:
    lines = [f"{'condition':<44}{'direction':<14}{'top-1':>8}{'R@5':>8}{'queries':>9}"]
    for row in result["rows"]:
        for direction, values in row["recall"].items():
            lines.append(f"{row['condition']:<44}{direction:<14}{100 * values['R@1']:>7.1f}%"
                         f"{100 * values['R@5']:>7.1f}%{row['queries']:>9}")
    lines.append("targets:\n" + result.targets_table())
    return "\n".join(lines)
