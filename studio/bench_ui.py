"""`nlmm-studio-bench` (or `nlmm-studio --bench-ui`): how responsive the window stays while the engine
trains and answers queries.

A UI-thread heartbeat timer fires every 5 ms; any lateness beyond that is an event-loop stall (the UI
thread was busy, or waited for the GIL). First, training runs the `tiny` config on the built-in set in
the engine, with every curve and the memory view updating as in normal use; then the shipped demo model
answers a stream of text queries with "adapt memory" on (each sent as the last returns) while the
Memory panel follows; last, the Joint space panel draws a map of JOINT_POINTS points (the gallery's real
items and jittered copies of them, projected by the engine) while the same adaptive stream moves the
query's star and its lines to the top k; then hands-free listening: spoken numbers (held-out test
voices over room noise) are fed in real time to the Listen path, as PortAudio's callback would feed it
(blocks of WINDOW samples from another thread), and each number's latency is timed from the end of its
speech to its results on screen. Printed: p50 / p99 / max stall, curve redraws per second, memory frames per
second in both phases, what one curve update costs once a run is 20 000 steps long (a short bench
run cannot show how the plots scale), and the time from process start to a usable window.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.bench.result import BenchResult, Target
from studio.bench_measures import bench_joint_map, listening_latency, long_run_redraw_ms

HEARTBEAT_MS = 5
FAST_BATCH = 2      # the fast-steps phase: the smallest batch, the most steps (and memory states) a second
JOINT_POINTS = 10_000   # the joint-space phase's map: the "10 000-item gallery"
LISTEN_NUMBERS = (42, 7, 93, 15, 60, 88, 3, 71, 29, 50)   # the listening phase's spoken stream
STALL_P99_MS, STALL_MAX_MS = 20.0, 50.0   # the event loop's stalls, every phase
MEMORY_FPS = 10.0       # memory frames drawn a second, at least
ANSWER_MS = 150.0       # end of speech to results on screen, the typical number (p50)
LAUNCH_S = 3.0          # process start to a usable window


def _stalls(ticks: list[float]) -> dict:
    ticks_a = np.asarray(ticks)
    stalls = np.maximum(0.0, np.diff(ticks_a) * 1000 - HEARTBEAT_MS) if len(ticks_a) > 1 else np.zeros(1)
    return {"p50": round(float(np.percentile(stalls, 50)), 2), "p99": round(float(np.percentile(stalls, 99)), 2),
            "max": round(float(stalls.max()), 2)}


def _stall_line(stall: dict, targets: bool = False) -> str:
    return (f"  event-loop stall   p50 {stall['p50']:.1f} ms   p99 {stall['p99']:.1f} ms   max {stall['max']:.1f} ms"
            + ("   (targets: p99 <= 20 ms, max <= 50 ms)" if targets else ""))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nlmm-studio-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="the model the query phase asks (default: the shipped demo model)")
    parser.add_argument("--config", default="tiny", help="config YAML or preset to train (default tiny)")
    parser.add_argument("--device", help="cpu, cuda (default: CUDA when present, else CPU)")
    parser.add_argument("--gallery-size", type=int, default=200, help="items embedded for the query phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each phase (default 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


def run(args) -> int:
    from studio.bootstrap import make_app, process_age_s
    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"   # a headless machine: measure without a screen
    app = make_app([sys.argv[0]])
    from PySide6.QtCore import QSettings, Qt, QTimer
    from engine.paths import DEFAULT_CHECKPOINT
    from studio.main_window import MainWindow, StudioOptions

    scratch = Path(tempfile.mkdtemp(prefix="nlmm-bench-ui-"))
    checkpoint = args.checkpoint or str(DEFAULT_CHECKPOINT)
    options = StudioOptions(settings=QSettings(str(scratch / "settings.ini"), QSettings.IniFormat),
                            runs_dir=scratch / "runs", config=args.config or "tiny", device=args.device,
                            checkpoint=checkpoint, gallery_source="builtin", gallery_split="test",
                            gallery_size=args.gallery_size or 200, load_checkpoint_on_start=Path(checkpoint).exists())
    window = MainWindow(options)
    window.show()
    host, panel = window.host, window.training_panel
    # phases: "training" (the config as it is, curves + memory view live); "fast_steps" (the same model
    # with batches of FAST_BATCH, so that steps come as fast as on a GPU: can the memory view keep up?);
    # then "queries" (text queries with "adapt memory" on, each sent when the last one returned, the memory
    # view following them)
    state: dict = {"phase": None, "ticks": [], "launch": None, "error": None, "results": {},
                   "training": ["training", "fast_steps"]}
    texts = ["forty two", "seven", "ninety nine", "thirteen", "sixty", "one", "twenty five", "eighty eight"]

    def usable() -> None:
        state["launch"] = process_age_s()
        window.model_panel.set_field("train.steps", 1_000_000)
        panel.set_data_spec("builtin")
        panel.start()

    def tick() -> None:
        if state["phase"]:
            state["ticks"].append(time.perf_counter())

    def begin(phase: str, seconds: float | None = None) -> None:
        state.update(phase=phase, ticks=[], t0=time.perf_counter(), redraws0=panel.curves.redraws,
                     stars0=window.joint_panel.query_draws,
                     frames0=window.memory_panel.frames_drawn, steps0=panel.step, queries=0)
        QTimer.singleShot(int((seconds or args.seconds) * 1000), end)

    def end() -> None:
        seconds = time.perf_counter() - state["t0"]
        phase = state["phase"]
        figures = {"stall_ms": _stalls(state["ticks"]), "seconds": round(seconds, 1),
                   "memory_frames_per_s": round((window.memory_panel.frames_drawn - state["frames0"]) / seconds, 1)}
        if phase in ("queries", "joint_space"):
            figures["queries_per_s"] = round(state["queries"] / seconds, 1)
        if phase == "joint_space":
            figures["points"] = len(window.joint_panel.map.points)
            figures["query_draws_per_s"] = round((window.joint_panel.query_draws - state["stars0"]) / seconds, 1)
        elif phase == "listening":
            figures.update(listening_latency(state["listening"]))
        else:
            figures["redraws_per_s"] = round((panel.curves.redraws - state["redraws0"]) / seconds, 1)
            figures["training_steps_per_s"] = round((panel.step - state["steps0"]) / seconds, 2)
        state["results"][phase] = figures
        state["phase"] = None
        if phase == "queries":
            start_joint_space()
        elif phase == "joint_space":
            start_listening()
        elif phase == "listening":
            window.close()
            app.quit()
        else:
            panel.stop()

    def training_finished(_ended) -> None:
        if state["training"]:           # the next training phase
            window.model_panel.set_field("data.batch_size", FAST_BATCH)
            QTimer.singleShot(0, panel.start)
        else:
            QTimer.singleShot(0, long_run)

    def long_run() -> None:
        state["results"]["long_run"] = long_run_redraw_ms(window, app)
        start_queries()

    def start_queries() -> None:
        if not window.retrieval_panel.gallery_ready:    # no model to query: training figures only
            if not Path(checkpoint).exists():
                window.close()
                app.quit()
                return
            QTimer.singleShot(200, start_queries)
            return
        if state["results"].get("queries") or state["phase"] == "queries":
            return
        window.show_panel("memory")
        app.processEvents()             # the panel's first paint is showing a tab, not the stream: as below
        begin("queries")
        next_query()

    def start_joint_space() -> None:
        """The map of JOINT_POINTS points is made on the engine thread, drawn, then the stream starts."""
        joint = window.joint_panel
        window.show_panel("joint")
        task = host.submit("bench joint map",
                           lambda _task: bench_joint_map(host.retrieval.retriever, JOINT_POINTS))

        def drawn(joint_map) -> None:
            joint.show_map(joint_map)
            app.processEvents()
            begin("joint_space")
            next_query()
        task.result.connect(drawn)

    def start_listening() -> None:
        """The microphone replaced by a thread feeding the spoken stream in real time to the Listen path."""
        import threading
        from engine.bench.spoken_stream import spoken_stream
        from engine.data.utterances import VAD_RATE, WINDOW
        speech = window.retrieval_panel.speech
        window.show_panel("retrieval")
        app.processEvents()             # the tab shown and painted before the phase, as for the others
        host.retrieval.reset_memory()   # the model as shipped: not as the text streams before adapted it
        stream = spoken_stream(LISTEN_NUMBERS, pause_s=1.0, tail_s=1.5)
        record = {"stream": stream, "pushed": [], "shown": [], "heard": [], "rate": VAD_RATE}
        state["listening"] = record
        speech.heard.connect(record["heard"].append)
        window.retrieval_panel.heard_answered.connect(
            lambda utterance, answer: state["phase"] == "listening"
            and record["shown"].append((time.perf_counter(), utterance, answer.results["image"][0].label)))
        speech.listen_button.blockSignals(True)     # listening, without opening a PortAudio stream
        speech.listen_button.setChecked(True)
        speech.listen_button.blockSignals(False)
        hands_free = speech.hands_free
        hands_free.failed.connect(lambda message: failed("listening", message))
        hands_free.start_without_microphone()   # its thread loads the detector first (once; measured apart below)
        loading = time.perf_counter()

        def feed() -> None:
            started = time.perf_counter()
            for first in range(0, len(stream.samples), WINDOW):
                time.sleep(max(0.0, started + (first + WINDOW) / VAD_RATE - time.perf_counter()))
                hands_free.hear(stream.samples[first:first + WINDOW])
                record["pushed"].append((first + WINDOW, time.perf_counter()))

        def when_loaded() -> None:
            if not hands_free.detector_ready:
                if not hands_free.detector_loading or time.perf_counter() - loading > 60:
                    failed("listening", "the voice-activity detector did not load")
                else:
                    QTimer.singleShot(5, when_loaded)
                return
            record["detector_load_ms"] = round(1000 * (time.perf_counter() - loading), 1)
            threading.Thread(target=feed, daemon=True).start()
            begin("listening", len(stream.samples) / VAD_RATE + 1.0)
        when_loaded()

    def next_query(_answer=None) -> None:
        if state["phase"] not in ("queries", "joint_space"):
            return
        state["queries"] += 1
        text = texts[state["queries"] % len(texts)]
        task = host.retrieval.query("text", text, k=5, adapt=True)
        task.result.connect(lambda answer: window.retrieval_panel.results.show_answer(answer, text))  # as shown
        task.result.connect(next_query)

    def first_update(_update) -> None:
        # measure from the first step of a run this bench started (not the last steps of a stopping one)
        if state.get("armed") and state["phase"] is None and panel.step > 0:
            state["armed"] = False
            phase = state["training"].pop(0)
            if phase == "fast_steps":
                window.show_panel("memory")   # watching the memory while the run goes on
            begin(phase)

    def failed(topic: str, message: str) -> None:
        state["error"] = f"{topic}: {message}"
        window.close()
        app.quit()

    def follow(run) -> None:
        run.began.connect(lambda _: state.update(armed=True))
        run.update.connect(first_update)
        run.result.connect(training_finished)

    host.training.submitted.connect(follow)
    host.failed.connect(failed)
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(tick)
    heartbeat.start()
    QTimer.singleShot(0, usable)
    app.exec()
    heartbeat.stop()
    if state["error"]:
        print(f"bench-ui: {state['error']}", file=sys.stderr)
        return 1

    training = state["results"]["training"]
    queries = state["results"].get("queries")
    result = {"stall_ms": training["stall_ms"], "redraws_per_s": training["redraws_per_s"],
              "memory_frames_per_s": training["memory_frames_per_s"],
              "training_steps_per_s": training["training_steps_per_s"],
              "launch_to_window_s": round(state["launch"], 2), "seconds": training["seconds"],
              "heartbeat_ms": HEARTBEAT_MS, "query_stream": queries,
              "curve_update_ms_long_run": state["results"].get("long_run"),
              "fast_steps": state["results"].get("fast_steps"),
              "joint_space": state["results"].get("joint_space"),
              "listening": state["results"].get("listening")}
    bench = BenchResult("studio", result, _targets(result), ran=_what_ran(args))
    if args.json:
        print(json.dumps(bench.as_dict()))
    else:
        stall = result["stall_ms"]
        print(f"UI responsiveness while training ({result['seconds']} s, heartbeat every {HEARTBEAT_MS} ms, "
              f"{result['training_steps_per_s']} training steps/s)")
        print(_stall_line(stall, targets=True))
        print(f"  redraws            {result['redraws_per_s']:.1f} curve redraws/s (Training panel in front; "
              "panels behind their tabs do not draw)")
        fast = result["fast_steps"]
        if fast:
            fs = fast["stall_ms"]
            print(f"While training in batches of {FAST_BATCH}, the most steps a second ({fast['seconds']} s, "
                  f"{fast['training_steps_per_s']} training steps/s, Memory panel shown)")
            print(_stall_line(fs))
            print(f"  memory view        {fast['memory_frames_per_s']:.1f} frames/s   (target >= 10; "
                  "one per training step)")
        long_run = result["curve_update_ms_long_run"]
        if long_run:
            print(f"  after {long_run['steps']} steps   one curve update (panel + repaint) "
                  f"p50 {long_run['p50']:.1f} ms   max {long_run['max']:.1f} ms")
        if queries:
            qs = queries["stall_ms"]
            print(f"While adapting queries stream ({queries['seconds']} s, {queries['queries_per_s']} queries/s)")
            print(_stall_line(qs))
            print(f"  memory view        {queries['memory_frames_per_s']:.1f} frames/s   (target >= 10)")
        joint = result["joint_space"]
        if joint:
            js = joint["stall_ms"]
            print(f"Joint space: {joint['points']} points while adapting queries stream ({joint['seconds']} s, "
                  f"{joint['queries_per_s']} queries/s, Joint space panel shown)")
            print(_stall_line(js, targets=True))
            print(f"  query star         {joint['query_draws_per_s']:.1f} redraws/s (with its lines to the top k)")
        listening = result["listening"]
        if listening:
            ls = listening["stall_ms"]
            print(f"Hands-free listening: {listening['numbers_spoken']} numbers spoken, {listening['queries']} queries "
                  f"({listening['tentative_replaced']} tentative ones replaced), {listening['answers_shown']} answers "
                  f"shown, {listening['top1_right']} numbers with the right top-1 left on screen")
            if "latency_ms" in listening:
                lat = listening["latency_ms"]
                print(f"  end of speech to results on screen   p50 {lat['p50']:.0f} ms   max {lat['max']:.0f} ms"
                      "   (target <= 150 ms)")
                cut = listening["end_detected_ms"]
                print(f"    of which the detector cutting it (first quiet window)   p50 {cut['p50']:.0f} ms   "
                      f"max {cut['max']:.0f} ms")
            print(_stall_line(ls))
            print(f"  (before it: the detector loaded in {listening['detector_load_ms']:.0f} ms on the listener thread, "
                  "once per session)")
        print(f"  launch to window   {result['launch_to_window_s']:.2f} s   (target <= 3 s)")
        print("targets:\n" + bench.targets_table())
    return 0


def _targets(result: dict) -> dict:
    """The studio's responsiveness targets, in the benchmarks' one shape (engine/bench/result.py)."""
    targets = {}
    phases = {"training": result, "fast_steps": result.get("fast_steps"), "queries": result.get("query_stream"),
              "joint_space": result.get("joint_space"), "listening": result.get("listening")}
    for phase, figures in phases.items():
        if not figures:
            continue
        targets[f"{phase}: event-loop stall p99 (ms)"] = Target(STALL_P99_MS, figures["stall_ms"]["p99"], at_most=True)
        targets[f"{phase}: event-loop stall max (ms)"] = Target(STALL_MAX_MS, figures["stall_ms"]["max"], at_most=True)
    for phase in ("fast_steps", "queries"):
        if phases[phase]:
            targets[f"{phase}: memory view frames/s"] = Target(MEMORY_FPS, phases[phase]["memory_frames_per_s"])
    listening = result.get("listening") or {}
    if "latency_ms" in listening:
        targets["listening: end of speech to results p50 (ms)"] = Target(ANSWER_MS, listening["latency_ms"]["p50"],
                                                                         at_most=True)
    targets["launch to window (s)"] = Target(LAUNCH_S, result["launch_to_window_s"], at_most=True)
    return targets


def _what_ran(args) -> dict:
    from engine.bench.machine import describe, precision_used
    from engine.config import load_config
    from engine.device import pick_device
    device = pick_device(args.device)
    return describe(device) | {"precision": precision_used(load_config(args.config or "tiny").precision, device)}
