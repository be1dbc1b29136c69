"""`nlmm bench corrections`: a user corrects wrong answers one at a time, as in the studio; what does the
model then answer for that user, and for everyone else?

For each shift the shipped model handles badly, a stream of corrections is learnt through the live path
(`Retriever.query`, then `Retriever.correct` with the right label): `TAUGHT` numbers (30 of the 100, drawn
at random once), each corrected `PER_NUMBER` times with different renders or clips. Then scored, through
the live query path with the corrections in force:

  other renders of the taught numbers    new images in the style / other clips of the voice
  numbers never corrected                the other 70, in the same style / voice (did the style carry over?)
  built-in test, all six directions      the reference items as before (what the user taught must change
                                         nothing for anyone else)

The shifts:
  handwriting: <font>       numbers written in a handwriting font the built-in set never uses
                            (resources/builtin/styles.npz), fresh renders drawn as training draws printed ones
  flite in a loud room      two speakers of the speech engine no split uses, in pink noise at -5 dB SNR (as
                            `bench teach`): corrections in their own voices, scored on the same speakers'
                            other clips (another speed and pitch, another noise)
  photographed handwriting  validation-split handwriting as harsh phone photos (angle, shadow, blur, JPEG):
                            corrections from two photos of each taught number, scored on fresh ones

Also: the time one correction takes (p50 / p95, after the first, which prepares the built-in anchors),
quiet and beside a busy process, a query's time before any correction and with 500 held, the memory the
process holds and the size of the corrections file. `Retriever.reset_memory()` between shifts is checked to be exact.
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.bench.machine import describe, rss_mb
from engine.bench.result import BenchResult, Target
from engine.bench.query import busy_processes
from engine.bench.teach import ROOM_SNR_DB, in_a_loud_room
from engine.data.builtin import load_builtin_manifest, load_heldout
from engine.data.dataset import Item
from engine.data.paper import HARSH, photograph
from engine.data.printed import compose, handwriting_styles
from engine.retrieval import Retriever
from engine.threads import threads_for
from engine.vocabulary import ANSWER_GALLERY, DIRECTIONS, MODALITIES

TAUGHT = tuple(sorted(random.Random(0).sample(range(100), 30)))
PER_NUMBER = 2            # corrections of each taught number
SCORED_PER_NUMBER = 2     # fresh renders / photos scored per number
STYLES = ("Because We Create Regular", "DkgHandwriting Roman")   # the two the shipped model reads worst
# The speakers a user corrects (flite's awb and rms at their own pace), and their other clips scored.
SPEAKERS_TAUGHT = ("flite-awb-d100", "flite-rms-d100")
SPEAKERS_SCORED = ("flite-awb-d120-f95", "flite-rms-d90-f130")
CORRECTIONS_FOR_SPEED = 500
SPEED_ROUNDS = 3           # alternating rounds of queries with none and with them all held
# Targets (issue: "Learn from each correction"): points of top-1 after 60 corrections, in-domain cost,
# latency, and a query with many corrections held.
TARGETS = {"style_untaught_top1": 0.80, "style_taught_top1": 0.95, "audio_other_clips_gain": 0.30,
           "builtin_worst_drop": 0.01, "correction_p95_ms": 100.0, "query_slowdown_at_500": 1.5}


NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)


def add_arguments(parser) -> None:
    from engine.cli_args import checkpoint_option
    checkpoint_option(parser)


def _style_shift(name: str, atlas: np.ndarray) -> dict:
    """Renders of numbers in one handwriting font: teaching renders and fresh ones to score."""
    def renders(numbers, seed, per):
        rng = np.random.default_rng(seed)
        return [(Image.fromarray(compose(n, atlas, rng)), n) for n in numbers for _ in range(per)]
    others = [n for n in range(100) if n not in TAUGHT]
    return {"name": f"handwriting: {name}", "modality": "image",
            "teach": renders(TAUGHT, 1, PER_NUMBER), "taught": renders(TAUGHT, 2, SCORED_PER_NUMBER),
            "untaught": renders(others, 3, SCORED_PER_NUMBER)}


def _loud_room_shift(folder: Path) -> dict:
    """Two flite speakers (the engine no split uses) in a loud room: each taught number corrected once in
    each speaker's own voice; scored on the same speakers' other clips (another speed and pitch, another
    noise), for the taught numbers and the others."""
    flite = load_heldout()["speech_engine"]
    teach = [c for c in flite if c.source in SPEAKERS_TAUGHT and c.label in TAUGHT]
    taught = [c for c in flite if c.source in SPEAKERS_SCORED and c.label in TAUGHT]
    untaught = [c for c in flite if c.source in SPEAKERS_SCORED and c.label not in TAUGHT]
    as_pairs = lambda items: [(str(i.audio), i.label) for i in items]   # noqa: E731
    return {"name": f"flite in a loud room ({ROOM_SNR_DB:.0f} dB SNR)", "modality": "audio",
            "teach": as_pairs(in_a_loud_room(teach, folder, 1)), "taught": as_pairs(in_a_loud_room(taught, folder, 2)),
            "untaught": as_pairs(in_a_loud_room(untaught, folder, 3))}


def _photo_shift() -> dict:
    """Validation handwriting (never in the test gallery) photographed harshly, each photo afresh."""
    by_label: dict[int, list] = {}
    for item in load_builtin_manifest()["val"]:
        by_label.setdefault(item.label, []).append(item.image)
    def photos(numbers, first, per, seed):
        out = []
        for n in numbers:
            for k in range(per):
                image = np.asarray(Image.open(by_label[n][(first + k) % len(by_label[n])]).convert("L"))
                out.append((photograph(image, np.random.default_rng([seed, n, k]), HARSH), n))
        return out
    others = [n for n in range(100) if n not in TAUGHT]
    return {"name": "photographed handwriting (harsh)", "modality": "image",
            "teach": photos(TAUGHT, 0, PER_NUMBER, 1), "taught": photos(TAUGHT, PER_NUMBER, SCORED_PER_NUMBER, 2),
            "untaught": photos(others, 0, SCORED_PER_NUMBER, 3)}


def top1(retriever: Retriever, modality: str, pairs) -> float:
    """Top-1 through the live query path (the corrections' votes included) in the answer gallery."""
    if not pairs:
        return 0.0
    target = ANSWER_GALLERY[modality]
    gallery = retriever.galleries[target]
    rows = retriever.embed_many(modality, [value for value, _ in pairs])
    hits = 0
    for row, (_, label) in zip(rows, pairs):
        scores = retriever.corrections.adjust(modality, row, gallery.embeddings @ row, gallery.ids)
        hits += int(gallery.ids[int(scores.argmax())]) == label
    return hits / len(pairs)


def builtin_r1(retriever: Retriever, queries: dict[str, list]) -> dict[str, float]:
    """R@1 of the built-in test split in all six directions, through the live query path."""
    out = {}
    for modality in MODALITIES:
        values = queries[modality]
        rows = retriever.embed_many(modality, [v for v, _ in values])
        labels = torch.tensor([label for _, label in values])
        for query, target in DIRECTIONS:
            if query != modality:
                continue
            gallery = retriever.galleries[target]
            best = torch.stack([retriever.corrections.adjust(modality, row, gallery.embeddings @ row, gallery.ids)
                                .argmax() for row in rows])
            out[f"{query}->{target}"] = float((gallery.ids[best] == labels).float().mean())
    return out


def _correct_stream(retriever: Retriever, modality: str, pairs) -> list[float]:
    """Each (value, label) asked, then corrected; returns each correction's wall time in seconds. Queries
    and corrections run on the threads the live path gives them."""
    seconds = []
    target = ANSWER_GALLERY[modality]
    for value, label in pairs:
        answer = retriever.query(modality, value, k=1, targets=[target])
        start = time.perf_counter()
        retriever.correct(answer.query_id, target, retriever.identity_of(target, label))
        seconds.append(time.perf_counter() - start)
    return seconds


def run(checkpoint, device: str | None = None, progress=print, quick: bool = False,
        styles: tuple[str, ...] = STYLES, **options) -> BenchResult:
    """`options`: the CorrectionMemory's settings to measure (learners, parts, lr, steps, ...). `quick`: a
    few numbers, a tenth of the test split (a check that it runs, not a figure)."""
    torch.manual_seed(0)
    retriever = Retriever.from_checkpoint(checkpoint, device)
    for key, value in options.items():
        setattr(retriever.corrections, key, frozenset(value) if key == "learners" else value)
    test = load_builtin_manifest()["test"]
    if quick:
        test = test[::10]
    retriever.build_gallery([Item(image=i.image, text=i.text, audio=i.audio, label=i.label, key=str(i.label))
                             for i in test])
    queries = {"image": [(i.image, i.label) for i in test], "text": [(i.text, i.label) for i in test],
               "audio": [(i.audio, i.label) for i in test]}
    loaded = {k: v.clone() for k, v in retriever.model.state_dict().items()}
    progress(f"built-in test, {len(test)} items: R@1 in six directions before any correction")
    before_builtin = builtin_r1(retriever, queries)
    atlases = handwriting_styles()
    rows = []
    with tempfile.TemporaryDirectory(prefix="nlmm-bench-corrections-") as tmp:
        shifts = [_style_shift(name, atlases[name]) for name in styles]
        shifts += [_loud_room_shift(Path(tmp) / "room"), _photo_shift()]
        for shift in shifts:
            if quick:
                shift = {**shift, "teach": shift["teach"][::10], "taught": shift["taught"][::10],
                         "untaught": shift["untaught"][::10]}
            rows.append(_measure_shift(retriever, shift, queries, before_builtin, Path(tmp), progress))
            retriever.reset_memory()
        exact = all(torch.equal(v, loaded[k]) for k, v in retriever.model.state_dict().items())
        style = _style_shift(styles[0], atlases[styles[0]]) if styles else _photo_shift()
        speed = _measure_speed(retriever, style, Path(tmp), quick, progress)
    figures = {"checkpoint": str(checkpoint), "taught_numbers": list(TAUGHT), "per_number": PER_NUMBER,
               "learners": sorted(retriever.corrections.learners), "parts": retriever.corrections.parts,
               "builtin_before": before_builtin, "rows": rows, "speed": speed, "reset_exact": exact}
    ran = {"threads": threads_for(retriever.corrections.batch_size()),
           **describe(retriever.device, retriever.cfg.precision)}
    return BenchResult(NAME, figures, _targets(rows, speed, exact), ran, quick)


def _measure_shift(retriever: Retriever, shift: dict, queries: dict, before_builtin: dict, tmp: Path,
                   progress) -> dict:
    """One shift: top-1 before, its stream of corrections, top-1 after, the built-in test after, the file."""
    modality = shift["modality"]
    progress(f"{shift['name']}: scoring, then {len(shift['teach'])} corrections")
    before = {"taught": top1(retriever, modality, shift["taught"]),
              "untaught": top1(retriever, modality, shift["untaught"])}
    seconds = _correct_stream(retriever, modality, shift["teach"])
    after = {"taught": top1(retriever, modality, shift["taught"]),
             "untaught": top1(retriever, modality, shift["untaught"])}
    consolidated, due = None, retriever.corrections.consolidation_due()
    if due:   # the steps the studio takes while the user looks at the answers
        started = time.perf_counter()
        retriever.consolidate(due)
        consolidated = {"steps": due, "seconds": round(time.perf_counter() - started, 2),
                        "taught": top1(retriever, modality, shift["taught"]),
                        "untaught": top1(retriever, modality, shift["untaught"])}
    after_builtin = builtin_r1(retriever, queries)   # at the end, consolidated or not
    file = retriever.save_corrections(tmp / "corrections.pt")
    ms = 1e3 * np.array(seconds[1:] or seconds)
    drops = {d: before_builtin[d] - after_builtin[d] for d in before_builtin}
    row = {"shift": shift["name"], "modality": modality, "corrections": len(seconds),
           "taught_numbers": len(TAUGHT), "scored": {k: len(shift[k]) for k in ("taught", "untaught")},
           "before": before, "after": after, "consolidated": consolidated, "builtin_after": after_builtin,
           "builtin_worst_drop": max(drops.values()),
           "correction_ms": {"first": round(1e3 * seconds[0], 1), "p50": round(float(np.percentile(ms, 50)), 1),
                             "p95": round(float(np.percentile(ms, 95)), 1)},
           "file_mb": round(file.stat().st_size / 2**20, 2)}
    progress(f"  taught {100 * before['taught']:.1f} -> {100 * after['taught']:.1f} %, never corrected "
             f"{100 * before['untaught']:.1f} -> {100 * after['untaught']:.1f} %, built-in worst drop "
             f"{100 * max(drops.values()):.1f}, correction p95 {row['correction_ms']['p95']} ms"
             + (f"; after {due} consolidation steps ({consolidated['seconds']} s): taught "
                f"{100 * consolidated['taught']:.1f} %, never corrected {100 * consolidated['untaught']:.1f} %"
                if consolidated else ""))
    return row


def _measure_speed(retriever: Retriever, style: dict, tmp: Path, quick: bool, progress) -> dict:
    """A query's time with no correction, then with CORRECTIONS_FOR_SPEED held (`style`'s stream, cycled);
    then, as a desktop runs other programs, the stream again beside one busy process."""
    progress(f"query time with 0 and {CORRECTIONS_FOR_SPEED} corrections held")
    probe = [value for value, _ in style["untaught"][:40]]
    rss_before = rss_mb()
    stream = (style["teach"] * (CORRECTIONS_FOR_SPEED // len(style["teach"]) + 1))[:CORRECTIONS_FOR_SPEED]
    if quick:
        stream = stream[:20]
    _correct_stream(retriever, "image", stream)
    rss_after = rss_mb()
    file = retriever.save_corrections(tmp / "many.pt")
    # none held / all held, alternating rounds (their saved file loaded again): a neighbour's load falls on
    # both alike; each the median of its rounds' medians
    plain, held = [], []
    for _ in range(SPEED_ROUNDS):
        retriever.reset_memory()
        plain.append(_query_ms(retriever, probe))
        retriever.load_corrections(file)
        held.append(_query_ms(retriever, probe))
    plain, held = float(np.median(plain)), float(np.median(held))
    retriever.reset_memory()
    progress("corrections beside a busy process")
    with busy_processes(1) as pids:
        loaded = 1e3 * np.array(_correct_stream(retriever, "image", style["teach"][: 20 if quick else None])[1:])
    retriever.reset_memory()
    return {"correction_ms_beside_busy": {"p50": round(float(np.percentile(loaded, 50)), 1),
                                          "p95": round(float(np.percentile(loaded, 95)), 1),
                                          "busy_processes": len(pids)},
            "corrections_held": len(stream), "query_ms_p50_none": plain, "query_ms_p50_held": held,
            "slowdown": held / plain, "rss_mb_before": round(rss_before, 1), "rss_mb_after": round(rss_after, 1),
            "file_mb": round(file.stat().st_size / 2**20, 2)}


def _targets(rows: list[dict], speed: dict, exact: bool) -> dict[str, Target]:
    targets = {}
    for r in rows:
        if r["shift"].startswith("handwriting"):   # once consolidated, as the studio has it after a pause
            final = r["consolidated"] or r["after"]
            targets[f"{r['shift']}: never corrected"] = Target(TARGETS["style_untaught_top1"], final["untaught"])
            targets[f"{r['shift']}: taught, other renders"] = Target(TARGETS["style_taught_top1"], final["taught"])
        elif r["modality"] == "audio":
            targets[f"{r['shift']}: other clips, gain"] = Target(TARGETS["audio_other_clips_gain"],
                                                                 r["after"]["taught"] - r["before"]["taught"])
    targets["built-in test: worst drop, any direction"] = Target(
        TARGETS["builtin_worst_drop"], max((r["builtin_worst_drop"] for r in rows), default=0.0), at_most=True)
    targets["one correction p95 (ms)"] = Target(
        TARGETS["correction_p95_ms"], max((r["correction_ms"]["p95"] for r in rows), default=0.0), at_most=True)
    targets[f"a query with {CORRECTIONS_FOR_SPEED} held (x slower)"] = Target(
        TARGETS["query_slowdown_at_500"], speed["slowdown"], at_most=True)
    targets["Reset memory restores every weight (1 = bit for bit)"] = Target(1.0, float(exact))
    return targets


def from_args(args, progress) -> BenchResult:
    return run(args.checkpoint, args.device, progress=progress, quick=args.quick)


def _query_ms(retriever: Retriever, values) -> float:
    times = []
    for value in values:
        start = time.perf_counter()
        retriever.query("image", value, k=5)
        times.append(1e3 * (time.perf_counter() - start))
    return round(float(np.median(times)), 2)


def format_table(result: BenchResult) -> str:
    lines = [f"{len(result['taught_numbers'])} numbers corrected {result['per_number']} times each "
             f"(learners: {', '.join(result['learners'])}; parts: {result['parts']})",
             f"{'shift':<44}{'taught, other renders':>24}{'never corrected':>20}{'built-in worst':>16}{'p50/p95 ms':>14}"]
    for r in result["rows"]:
        b, a = r["before"], r["after"]
        lines.append(f"{r['shift']:<44}{100 * b['taught']:>10.1f} -> {100 * a['taught']:5.1f} %"
                     f"{100 * b['untaught']:>8.1f} -> {100 * a['untaught']:5.1f} %"
                     f"{-100 * r['builtin_worst_drop']:>+15.1f}{r['correction_ms']['p50']:>8.0f}/{r['correction_ms']['p95']:.0f}")
        if r["consolidated"]:
            c = r["consolidated"]
            lines.append(f"{'  then ' + str(c['steps']) + ' consolidation steps (' + str(c['seconds']) + ' s)':<44}"
                         f"{100 * c['taught']:>19.1f} %{100 * c['untaught']:>17.1f} %")
    s = result["speed"]
    lines.append(f"query p50 {s['query_ms_p50_none']:.1f} ms with none held, {s['query_ms_p50_held']:.1f} ms with "
                 f"{s['corrections_held']} ({s['slowdown']:.2f}x); RSS {s['rss_mb_before']:.0f} -> {s['rss_mb_after']:.0f} MB; "
                 f"file {s['file_mb']} MB; reset exact: {result['reset_exact']}")
    ran = result.ran
    busy = s["correction_ms_beside_busy"]
    lines.append(f"one correction beside {busy['busy_processes']} busy process: p50 {busy['p50']:.0f} ms, "
                 f"p95 {busy['p95']:.0f} ms")
    lines.append(f"ran: {ran['cpu']}, {ran['threads']} threads, {ran['precision']}, load {ran['load_average']}")
    lines.append("targets:\n" + result.targets_table())
    return "\n".join(lines)
