"""What `nlmm-studio --bench-ui` measures besides the event loop's stalls: a big joint-space map, what one
curve update costs in a long run, and hands-free listening's latency."""
from __future__ import annotations

import time

import numpy as np


def bench_joint_map(retriever, points: int):
    """Engine thread: a JointMap of `points` points, the gallery's own items and noisy copies of their
    embeddings (so that the query's hits are on the map and the scatter holds a big gallery's load)."""
    import torch
    from engine.joint_space import joint_map
    from engine.training.evaluate import EmbeddedGallery
    galleries = retriever.galleries
    per_modality = -(-points // max(1, len(galleries)))     # rounded up: at least `points` in all
    generator = torch.Generator().manual_seed(0)
    grown = {}
    for modality, gallery in galleries.items():
        copies = -(-per_modality // len(gallery.ids))
        noise = 0.05 * torch.randn(copies * len(gallery.ids), gallery.embeddings.shape[1], generator=generator)
        noise[: len(gallery.ids)] = 0.0    # the first copy is the gallery itself
        embeddings = (gallery.embeddings.repeat(copies, 1) + noise)[:per_modality]
        items = (gallery.items * copies)[:per_modality]
        grown[modality] = EmbeddedGallery(modality, embeddings, gallery.ids.repeat(copies)[:per_modality], items)
    return joint_map(grown)


def long_run_redraw_ms(window, app, steps: int = 20_000, updates: int = 40) -> dict:
    """What one curve update costs (the panel's work and the repaint it causes) once a run is long:
    the training curves hold `steps` synthetic steps, then single steps arrive as during training."""
    from engine.events import Evaluation, StepMetrics
    curves = window.training_panel.curves
    window.show_panel("training")
    levels = [("fast", 1), ("medium", 4), ("slow", 16)]
    rng = np.random.default_rng(0)

    def step(i: int) -> StepMetrics:
        loss = 4.0 * np.exp(-i / 3000) + 0.3 + 0.2 * rng.random()
        return StepMetrics(i, loss, 2 * steps, {p: loss + 0.1 * rng.random() for p in
                                                ("image-text", "image-audio", "text-audio")},
                           tuple(name for name, chunk in levels if i % chunk == 0),
                           {**{name: 1e-3 / chunk for name, chunk in levels}, "outer": 2e-3})

    curves.total_steps = 2 * steps
    curves.clear([name for name, _ in levels], [chunk for _, chunk in levels])
    recall = {"R@1": 0.5}
    curves.add([step(i) for i in range(1, steps + 1)],
               [Evaluation(i, {d: recall for d in ("image->text", "audio->image")}) for i in range(500, steps + 1, 500)])
    app.processEvents()
    times = []
    for i in range(steps + 1, steps + 1 + updates):
        started = time.perf_counter()
        curves.add([step(i)])
        app.processEvents()
        times.append(1000 * (time.perf_counter() - started))
    curves.clear([])
    return {"steps": steps, "p50": round(float(np.median(times)), 1), "max": round(float(max(times)), 1)}


def listening_latency(record: dict) -> dict:
    """From the end of each number's speech (when its last sample was captured: the time its block was
    delivered, less the samples after it in the block) to the first results on screen for an utterance that
    holds all of it (a tentative one, usually); the top-1 judged is the answer left on screen for it."""
    from engine.data.utterances import TENTATIVE
    stream, pushed, shown, heard, rate = (record["stream"], record["pushed"], record["shown"], record["heard"],
                                          record["rate"])
    ends = []
    for _, last in stream.spans:
        block_end, at = next(((n, t) for n, t in pushed if n >= last), pushed[-1] if pushed else (last, 0.0))
        ends.append(at - (block_end - last) / rate)

    def holds(utterance, span) -> bool:    # within 50 ms: the detector's padding and windows
        return utterance.start_s * rate <= span[0] + 0.05 * rate and utterance.end_s * rate >= span[1] - 0.05 * rate

    latencies, cut, right = [], [], 0
    for span, end, label in zip(stream.spans, ends, stream.labels):
        answers = [(at, top) for at, utterance, top in shown if holds(utterance, span)]
        cuts = [u.cut_at for u in heard if u.to_ask and holds(u, span)]
        if answers:
            latencies.append(1e3 * (answers[0][0] - end))
            right += answers[-1][1] == label
        if cuts:
            cut.append(1e3 * (cuts[0] - end))
    asked = [u for u in heard if u.to_ask]
    ended = [u for u in heard if u.kind != TENTATIVE]
    out = {"detector_load_ms": record.get("detector_load_ms"), "numbers_spoken": len(stream.spans),
           "queries": len(asked), "utterances": len(ended), "tentative_replaced": len(asked) - len(ended),
           "answers_shown": len(shown), "numbers_answered": len(latencies), "top1_right": right}
    if latencies:
        out["latency_ms"] = {"p50": round(float(np.percentile(latencies, 50)), 1),
                             "max": round(float(np.max(latencies)), 1),
                             "each": [round(v, 1) for v in latencies]}
        # where the time goes: the detector cutting the utterance, then the query and the rows drawn
        out["end_detected_ms"] = {"p50": round(float(np.percentile(cut, 50)), 1), "max": round(float(np.max(cut)), 1)}
    return out
