"""`nlmm bench ttt`: the test-time learners, alone and together, on unlabelled streams of shifted queries.

For every shift (`build_shifts`) and every set of learners (`ABLATION`, from `engine/adaptation.py`):
  before  top-1 of the shifted queries, nothing adapted (the same for every set)
  after   the same queries again, after one adapting pass over them in a fixed random order
  clean   the in-domain test queries of the same modality after that pass (what adapting cost)
Adapting queries go one at a time through the live path (`Retriever.embed(adapt=True)`), as in the
studio; scoring is batched and writes nothing. Audio queries are scored against the test images, image
queries against the captions (a hit is an item of the query's number).

`drift`: each set adapts on a stream of `drift` queries cycling over the held-out engine's clips, with
top-1 on those clips every tenth of the way and the clean in-domain top-1 at the end; then `reset()`,
and every weight must be back bit for bit.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.bench.machine import describe
from engine.bench.result import BenchResult, Target
from engine.bench.robustness import recall
from engine.bench.shifts import Shift, clean_waves, harsh_photos, pink_noise, pitched_with_white_noise, reverberant
from engine.data.builtin import load_builtin_manifest, load_heldout
from engine.data.dataset import Item
from engine.retrieval import Retriever
from engine.vocabulary import ANSWER_GALLERY, DEFAULT_ADAPTATION, MODALITIES

# Each learner alone (the slots written by every query modality at the trained rate), all of them, and
# what `--adapt` and the studio do by default (`default_adaptation`: its learners, writers and rates).
ABLATION = {"memory_gated": ("memory_gated",), "memory_delta": ("memory_delta",), "hope": ("hope",),
            "cms_fast": ("cms_fast",), "domain": ("domain",),
            "all": ("memory_gated", "hope", "cms_fast", "domain"), "default": DEFAULT_ADAPTATION}
HELD_OUT_ENGINE = "engine never trained on: flite"
TARGET_GAIN, MAX_CLEAN_LOSS, MAX_DRIFT = 0.05, 0.01, 0.02
NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)


def add_arguments(parser) -> None:
    from engine.cli_args import at_least, checkpoint_option, some_of
    checkpoint_option(parser)
    parser.add_argument("--drift", type=at_least(0), default=0, metavar="N",
                        help="also adapt on N queries of the held-out engine and follow top-1 (target: 10000)")
    parser.add_argument("--mechanisms", type=some_of(list(ABLATION)), default=None, metavar="A,B",
                        help=f"which of {', '.join(ABLATION)} (default: every one)")


def build_shifts(test, heldout, rate: int, size: int) -> list[Shift]:
    """Every shift at about `size` queries, spread evenly over its items (all numbers stay in)."""
    picked = spread_over_numbers(test, size)
    waves = clean_waves(picked, rate)
    labels = [i.label for i in picked]
    flite, fonts = spread_over_numbers(heldout["speech_engine"], size), spread_over_numbers(heldout["fonts"], size)
    return [Shift(HELD_OUT_ENGINE, "audio", [(w, rate) for w in clean_waves(flite, rate)], [i.label for i in flite]),
            Shift("recorded rooms (reverb)", "audio", reverberant(waves, rate), labels),
            Shift("pink noise 0 dB SNR", "audio", pink_noise(waves, rate, 0), labels),
            Shift("pitched +3 semitones, white noise 10 dB", "audio", pitched_with_white_noise(waves, rate), labels),
            Shift("fonts never trained on", "image", [i.image for i in fonts], [i.label for i in fonts]),
            Shift("handwriting photographed on paper (harsh)", "image", harsh_photos(picked), labels)]


def spread_over_numbers(items: list, size: int) -> list:
    """About `size` of `items`, every number equally often: sorted by number, then every k-th (the held-out
    engine's clips come voice by voice, so every k-th of them alone kept only the even numbers)."""
    ordered = sorted(items, key=lambda item: item.label)
    return ordered[:: max(1, len(ordered) // size)][:size]


def _top1(retriever: Retriever, modality: str, values: list, labels: list[int]) -> float:
    target = ANSWER_GALLERY[modality]
    return recall(retriever, modality, values, labels, targets=(target,))[f"{modality}->{target}"]["R@1"]


def _stream(retriever: Retriever, shift: Shift, n: int, seed: int = 0):
    """The shift's queries in a fixed random order, cycling when `n` is longer than the shift."""
    rng = np.random.default_rng(seed)
    order: list[int] = []
    while len(order) < n:
        order += list(rng.permutation(len(shift.values)))
    for i in order[:n]:
        retriever.embed(shift.modality, shift.values[i], adapt=True)


def _choose(retriever: Retriever, name: str) -> None:
    if name == "default":
        retriever.set_adaptation(ABLATION[name])
    else:
        retriever.set_adaptation(ABLATION[name], memory_modalities=MODALITIES, memory_lr=None)


def _weights_exact(retriever: Retriever, trained: dict) -> bool:
    return all(torch.equal(v, trained[k]) for k, v in retriever.model.state_dict().items())


def run(checkpoint, device: str | None = None, progress=print, quick: bool = False, size: int = 400,
        drift: int = 0, mechanisms: list[str] | None = None) -> BenchResult:
    """`quick`: 10 queries per shift and a tenth of the clean test (a check that it runs, not a figure).
    `mechanisms`: names of `ABLATION` to run (default all)."""
    chosen = mechanisms or list(ABLATION)
    unknown = [m for m in chosen if m not in ABLATION]
    if unknown:                         # said before the model loads
        raise ValueError(f"unknown mechanism {', '.join(unknown)}; expected some of {', '.join(ABLATION)}")
    torch.manual_seed(0)
    retriever = Retriever.from_checkpoint(checkpoint, device)
    rate = retriever.cfg.audio.sample_rate
    test, heldout = load_builtin_manifest()["test"], load_heldout()
    if quick:
        size, drift = 10, min(drift, 40)
    retriever.build_gallery([Item(image=i.image, text=i.text, label=i.label, key=str(i.label)) for i in test])
    clean_items = test[::10] if quick else test
    # decoded once: every learner on every shift scores them again (decoding was a fifth of the run)
    clean = {"audio": ([(w, rate) for w in clean_waves(clean_items, rate)], [i.label for i in clean_items]),
             "image": ([i.image for i in clean_items], [i.label for i in clean_items])}
    trained = {k: v.detach().clone() for k, v in retriever.model.state_dict().items()}
    shifts = build_shifts(test, heldout, rate, size)
    clean_before = {m: _top1(retriever, m, *clean[m]) for m in clean}
    rows, reset_exact = [], True
    for shift in shifts:
        before = _top1(retriever, shift.modality, shift.values, shift.labels)
        progress(f"{shift.name}: {len(shift.values)} {shift.modality} queries, top-1 before {100 * before:.1f}%, "
                 f"clean {100 * clean_before[shift.modality]:.1f}%")
        row = {"shift": shift.name, "modality": shift.modality, "queries": len(shift.values), "before": before,
               "clean_before": clean_before[shift.modality], "mechanisms": {}}
        for name in chosen:
            _choose(retriever, name)
            _stream(retriever, shift, len(shift.values))
            after = _top1(retriever, shift.modality, shift.values, shift.labels)
            clean_after = _top1(retriever, shift.modality, *clean[shift.modality])
            retriever.reset_memory()
            reset_exact &= _weights_exact(retriever, trained)
            row["mechanisms"][name] = {"after": after, "clean_after": clean_after}
            progress(f"  {name:<13} after {100 * after:5.1f}% ({100 * (after - before):+5.1f}), clean "
                     f"{100 * clean_after:5.1f}% ({100 * (clean_after - clean_before[shift.modality]):+5.1f})")
        rows.append(row)

    drifts = {}
    if drift:
        engine = next(s for s in shifts if s.name == HELD_OUT_ENGINE)
        for name in chosen:
            _choose(retriever, name)
            every, seen, curve = max(1, drift // 10), 0, []
            while seen < drift:
                _stream(retriever, engine, every, seed=seen)
                seen += every
                curve.append({"queries": seen, "top1": _top1(retriever, "audio", engine.values, engine.labels)})
            clean_after = _top1(retriever, "audio", *clean["audio"])
            retriever.reset_memory()
            reset_exact &= _weights_exact(retriever, trained)
            tops = [point["top1"] for point in curve]
            best_at = int(np.argmax(tops))
            drifts[name] = {"curve": curve, "best": tops[best_at], "last": tops[-1],
                            "worst_below_best": tops[best_at] - min(tops[best_at:]), "clean_after": clean_after}
            progress(f"drift {name:<13} over {drift} queries: best {100 * tops[best_at]:.1f}%, last "
                     f"{100 * curve[-1]['top1']:.1f}%")

    held_out = next(row for row in rows if row["shift"] == HELD_OUT_ENGINE)
    by_mechanism = {name: {"gain": held_out["mechanisms"][name]["after"] - held_out["before"],
                           "clean_loss": held_out["clean_before"] - held_out["mechanisms"][name]["clean_after"]}
                    for name in chosen}
    targets = {}
    for name, figures in by_mechanism.items():
        mine = {f"{name}: gain on {HELD_OUT_ENGINE}": Target(TARGET_GAIN, figures["gain"]),
                f"{name}: in-domain top-1 lost": Target(MAX_CLEAN_LOSS, figures["clean_loss"], at_most=True)}
        if name in drifts:
            mine[f"{name}: fall after its best while drifting"] = Target(MAX_DRIFT, drifts[name]["worst_below_best"],
                                                                         at_most=True)
        figures["met"] = all(t.met for t in mine.values())
        if name == "default" or "default" not in chosen:   # the targets are for what the studio runs
            targets.update(mine)
    figures = {"checkpoint": str(checkpoint), "ablation": {k: list(ABLATION[k]) for k in chosen}, "rows": rows,
               "drift": drifts, "drift_queries": drift, "reset_exact": reset_exact, "by_mechanism": by_mechanism}
    ran = describe(retriever.device, retriever.cfg.precision)
    return BenchResult(NAME, figures, targets, ran, quick)


def from_args(args, progress) -> BenchResult:
    return run(args.checkpoint, args.device, progress=progress, quick=args.quick,
               drift=args.drift, mechanisms=args.mechanisms)


def format_table(result: BenchResult) -> str:
    names = list(result["ablation"])
    lines = [f"top-1 before -> after one adapting pass (clean in-domain after), per mechanism; "
             f"reset restores every weight: {'yes' if result['reset_exact'] else 'NO'}",
             f"{'shift':<44}{'before':>8}" + "".join(f"{n:>20}" for n in names)]
    for row in result["rows"]:
        cells = "".join(f"{100 * row['mechanisms'][n]['after']:>9.1f} ({100 * row['mechanisms'][n]['clean_after']:5.1f})"
                        .rjust(20) for n in names)
        lines.append(f"{row['shift']:<44}{100 * row['before']:>7.1f}%{cells}")
        lines.append(f"{'  clean in-domain before':<44}{100 * row['clean_before']:>7.1f}%")
    for name, drift in result["drift"].items():
        lines.append(f"drift {name}: best {100 * drift['best']:.1f}%, last {100 * drift['last']:.1f}%, "
                     f"lowest after the best {100 * (drift['best'] - drift['worst_below_best']):.1f}%, "
                     f"clean in-domain at the end {100 * drift['clean_after']:.1f}%")
    met = [n for n, f in result["by_mechanism"].items() if f["met"]]
    lines.append(f"target on {HELD_OUT_ENGINE} (+{100 * TARGET_GAIN:.0f} points, <= "
                 f"{100 * MAX_CLEAN_LOSS:.0f} lost in-domain): met by {', '.join(met) or 'none'}")
    lines.append("targets:\n" + result.targets_table())
    return "\n".join(lines)
