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
from PySide6.QtCore import QTimer

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
CACHED_GALLERY_S = 10.0  # a gallery embedded before: its cache read and first query answered


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
    parser.add_argument("--switch-images", type=int, default=0, metavar="N",
                        help="last, switch to a gallery of N images with 5 captions and 5 clips each, made on the "
                             "fly (8000: Flickr8k's size; default 0: no such phase)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


class Phase:
    """One phase of the bench: `start` sets the window up and calls `bench.begin(self)` when the measured
    span starts (the bench ends it after its seconds), `figures` adds what it measured besides the stalls,
    `stop` winds it down. Each drives the window through public methods and signals only."""
    name = ""
    measures_queries = False      # adaptive text queries stream during it

    def seconds(self, bench) -> float:
        return bench.args.seconds

    def start(self, bench) -> None:
        bench.begin(self)

    def figures(self, bench, seconds: float) -> dict:
        return {}

    def stop(self, bench) -> None:
        bench.next_phase()


class Training(Phase):
    """The training run's curves (and, with small batches, the memory view) live while it trains: begun at
    the run's first step, not before (the last steps of a stopping run are not this phase's)."""

    def __init__(self, name: str, batch_size: int | None = None, panel: str = "training"):
        self.name, self.batch_size, self.panel = name, batch_size, panel

    def start(self, bench) -> None:
        if self.batch_size is not None:
            bench.window.model_panel.set_field("data.batch_size", self.batch_size)
        QTimer.singleShot(0, bench.window.training_panel.start)

    def on_first_step(self, bench) -> None:
        if self.panel != "training":
            bench.window.show_panel(self.panel)     # watching the memory while the run goes on
        bench.begin(self)

    def figures(self, bench, seconds: float) -> dict:
        panel = bench.window.training_panel
        return {"redraws_per_s": round((panel.curves.redraws - bench.marks["redraws"]) / seconds, 1),
                "training_steps_per_s": round((panel.step - bench.marks["steps"]) / seconds, 2)}

    def stop(self, bench) -> None:
        bench.window.training_panel.stop()      # the run's end starts the next phase (`UiBench.follow`)


class LongRun(Phase):
    """Not timed for stalls: what one curve update costs once a run is 20 000 steps long (a short bench run
    cannot show how the plots scale)."""
    name = "long_run"

    def start(self, bench) -> None:
        bench.results[self.name] = long_run_redraw_ms(bench.window, bench.app)
        bench.next_phase()


class QueryStream(Phase):
    """Adaptive text queries, each sent as the last returns, the Memory panel following them."""
    name, measures_queries = "queries", True

    def start(self, bench) -> None:
        bench.window.show_panel("memory")
        bench.app.processEvents()     # the panel's first paint is showing a tab, not the stream: as below
        bench.begin(self)
        bench.next_query()

    def figures(self, bench, seconds: float) -> dict:
        return {"queries_per_s": round(bench.queries / seconds, 1)}


class JointSpace(QueryStream):
    """A map of JOINT_POINTS points (made on the engine thread) drawn, then the same stream moving the
    query's star and its lines to the top k."""
    name = "joint_space"

    def start(self, bench) -> None:
        joint = bench.window.joint_panel
        bench.window.show_panel("joint")
        task = bench.host.submit("bench joint map",
                                 lambda _task: bench_joint_map(bench.host.retrieval.retriever, JOINT_POINTS))

        def drawn(joint_map) -> None:
            joint.show_map(joint_map)
            bench.app.processEvents()
            bench.begin(self)
            bench.next_query()
        task.result.connect(drawn)

    def figures(self, bench, seconds: float) -> dict:
        joint = bench.window.joint_panel
        return {**super().figures(bench, seconds), "points": len(joint.map.points),
                "query_draws_per_s": round((joint.query_draws - bench.marks["stars"]) / seconds, 1)}


class Listening(Phase):
    """The microphone replaced by a thread feeding a spoken stream in real time to the Listen path, as
    PortAudio's callback would; each number timed from the end of its speech to its results on screen."""
    name = "listening"

    def start(self, bench) -> None:
        import threading
        from engine.bench.spoken_stream import spoken_stream
        from engine.data.utterances import VAD_RATE, WINDOW
        window = bench.window
        speech = window.retrieval_panel.speech
        window.show_panel("retrieval")
        bench.app.processEvents()       # the tab shown and painted before the phase, as for the others
        bench.host.retrieval.reset_memory()   # the model as shipped: not as the text streams before adapted it
        self.stream = stream = spoken_stream(LISTEN_NUMBERS, pause_s=1.0, tail_s=1.5)
        self.record = record = {"stream": stream, "pushed": [], "shown": [], "heard": [], "rate": VAD_RATE}
        speech.heard.connect(record["heard"].append)
        window.retrieval_panel.heard_answered.connect(
            lambda utterance, answer: bench.phase is self
            and record["shown"].append((time.perf_counter(), utterance, answer.results["image"][0].label)))
        speech.listen_button.blockSignals(True)     # listening, without opening a PortAudio stream
        speech.listen_button.setChecked(True)
        speech.listen_button.blockSignals(False)
        hands_free = speech.hands_free
        hands_free.failed.connect(lambda message: bench.failed("listening", message))
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
                    bench.failed("listening", "the voice-activity detector did not load")
                else:
                    QTimer.singleShot(5, when_loaded)
                return
            record["detector_load_ms"] = round(1000 * (time.perf_counter() - loading), 1)
            threading.Thread(target=feed, daemon=True).start()
            bench.begin(self)
        when_loaded()

    def seconds(self, bench) -> float:
        from engine.data.utterances import VAD_RATE
        return len(self.stream.samples) / VAD_RATE + 1.0

    def figures(self, bench, seconds: float) -> dict:
        return listening_latency(self.record)


class GallerySwitch(Phase):
    """A gallery of `--switch-images` images, each with 5 captions and 5 clips (made on the fly as `nlmm bench
    scale` makes it), picked while the window is in use: the event loop's stalls while it is embedded, how
    often its progress reached the status bar, the seconds until it answers, then a text query over it.
    `cached`: the same folder picked again, read from the gallery cache the first build wrote (what a
    launch with that gallery finds)."""
    LIMIT_S = 3600.0          # it ends when the gallery is ready; this only bounds a build that hangs

    def __init__(self, cached: bool = False):
        self.name = "gallery_switch_cached" if cached else "gallery_switch"
        self.cached = cached

    def start(self, bench) -> None:
        from engine.bench.scale import make_gallery
        if self.cached:
            self.scratch, folder = bench.switch_folder
        else:
            self.scratch = Path(tempfile.mkdtemp(prefix="nlmm-bench-ui-gallery-"))
            folder = make_gallery(self.scratch / "gallery", bench.args.switch_images, progress=lambda _: None)
            bench.switch_folder = (self.scratch, folder)
        window = bench.window
        window.show_panel("retrieval")
        bench.app.processEvents()
        self.updates, self.started, self.figures_ = 0, time.perf_counter(), {}
        window.build_gallery({"source": f"folder:{folder}", "split": "all", "limit": 0})
        task = window.retrieval_panel.gallery_task
        task.progress.connect(self.progressed)
        task.result.connect(lambda ready: self.ready(bench, ready))
        task.error.connect(lambda message: bench.failed(self.name, message))
        bench.begin(self)

    def seconds(self, bench) -> float:
        return self.LIMIT_S

    def progressed(self, *_progress) -> None:
        self.updates += 1

    def ready(self, bench, ready) -> None:
        seconds = time.perf_counter() - self.started
        self.figures_ = {"images": bench.args.switch_images, "gallery_rows": dict(ready.sizes),
                         "seconds_to_ready": round(seconds, 1), "progress_updates": self.updates}
        asked = time.perf_counter()
        task = bench.host.retrieval.query("text", "forty two", k=5)
        task.result.connect(lambda answer: self.answered(bench, asked, answer))

    def answered(self, bench, asked: float, answer) -> None:
        self.figures_["first_query_ms"] = round(1000 * (time.perf_counter() - asked), 1)
        bench.window.retrieval_panel.results.show_answer(answer, "forty two")
        bench.end()

    def figures(self, bench, seconds: float) -> dict:
        return self.figures_

    def stop(self, bench) -> None:
        import shutil
        if self.cached:   # the folder goes with the second switch
            shutil.rmtree(self.scratch, ignore_errors=True)
        bench.next_phase()


QUERY_TEXTS = ["forty two", "seven", "ninety nine", "thirteen", "sixty", "one", "twenty five", "eighty eight"]


class UiBench:
    """The phases in turn, a heartbeat timing the event loop's stalls throughout, the figures of each."""

    def __init__(self, args, app, window, checkpoint: str):
        self.args, self.app, self.window, self.host = args, app, window, window.host
        self.checkpoint = checkpoint
        # training as configured (curves + memory view live); the same model in batches of FAST_BATCH, so that
        # steps come as fast as on a GPU (can the memory view keep up?); then the query phases
        self.upcoming: list[Phase] = [Training("training"), Training("fast_steps", FAST_BATCH, panel="memory"),
                                      LongRun(), QueryStream(), JointSpace(), Listening()]
        if args.switch_images > 0:
            self.upcoming += [GallerySwitch(), GallerySwitch(cached=True)]
        self.phase: Phase | None = None     # the one being measured
        self.starting: Phase | None = None  # the one started last (a training phase waits for its first step)
        self.ticks: list[float] = []
        self.marks: dict = {}
        self.queries = 0
        self.results: dict = {}
        self.launch: float | None = None
        self.error: str | None = None
        self.armed = False                  # a training phase waits for its run's first step

    # ------------------------------------------------------------------ the phases
    def next_phase(self) -> None:
        if not self.upcoming:
            self.window.close()
            self.app.quit()
            return
        phase = self.upcoming.pop(0)
        if phase.measures_queries and not self.window.retrieval_panel.gallery_ready:
            if not Path(self.checkpoint).exists():    # no model to query: training figures only
                self.upcoming = []
                self.next_phase()
                return
            self.upcoming.insert(0, phase)
            QTimer.singleShot(200, self.next_phase)
            return
        self.starting = phase
        phase.start(self)

    def begin(self, phase: Phase) -> None:
        window = self.window
        self.phase, self.ticks, self.queries = phase, [], 0
        self.marks = {"t0": time.perf_counter(), "redraws": window.training_panel.curves.redraws,
                      "stars": window.joint_panel.query_draws, "frames": window.memory_panel.frames_drawn,
                      "steps": window.training_panel.step}
        QTimer.singleShot(int(phase.seconds(self) * 1000), lambda: self.phase is phase and self.end())

    def end(self) -> None:
        phase, seconds = self.phase, time.perf_counter() - self.marks["t0"]
        frames = self.window.memory_panel.frames_drawn - self.marks["frames"]
        self.results[phase.name] = {"stall_ms": _stalls(self.ticks), "seconds": round(seconds, 1),
                                    "memory_frames_per_s": round(frames / seconds, 1),
                                    **phase.figures(self, seconds)}
        self.phase = None
        phase.stop(self)

    # ------------------------------------------------------------------ what drives them
    def usable(self) -> None:
        from studio.bootstrap import process_age_s
        self.launch = process_age_s()
        self.window.model_panel.set_field("train.steps", 1_000_000)
        self.window.training_panel.set_data_spec("builtin")
        self.next_phase()

    def tick(self) -> None:
        if self.phase is not None:
            self.ticks.append(time.perf_counter())

    def next_query(self, _answer=None) -> None:
        if self.phase is None or not self.phase.measures_queries:
            return
        self.queries += 1
        text = QUERY_TEXTS[self.queries % len(QUERY_TEXTS)]
        task = self.host.retrieval.query("text", text, k=5, adapt=True)
        task.result.connect(lambda answer: self.window.retrieval_panel.results.show_answer(answer, text))  # as shown
        task.result.connect(self.next_query)

    def follow(self, run) -> None:
        run.began.connect(lambda _: setattr(self, "armed", True))
        run.update.connect(self.first_update)
        run.result.connect(lambda _ended: QTimer.singleShot(0, self.next_phase))

    def first_update(self, _update) -> None:
        # measure from the first step of a run this bench started (not the last steps of a stopping one)
        if self.armed and self.phase is None and self.window.training_panel.step > 0 \
                and isinstance(self.starting, Training):
            self.armed = False
            self.starting.on_first_step(self)

    def failed(self, topic: str, message: str) -> None:
        self.error = f"{topic}: {message}"
        self.window.close()
        self.app.quit()


def run(args) -> int:
    from studio.bootstrap import make_app
    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"   # a headless machine: measure without a screen
    app = make_app([sys.argv[0]])
    from PySide6.QtCore import QSettings, Qt
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
    bench = UiBench(args, app, window, checkpoint)
    window.host.training.submitted.connect(bench.follow)
    window.host.failed.connect(bench.failed)
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(bench.tick)
    heartbeat.start()
    QTimer.singleShot(0, bench.usable)
    app.exec()
    heartbeat.stop()
    if bench.error:
        print(f"bench-ui: {bench.error}", file=sys.stderr)
        return 1
    return report(args, bench.results, bench.launch)


def report(args, results: dict, launch: float) -> int:
    """The figures printed (or as JSON), with the targets."""
    state = {"results": results, "launch": launch}
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
              "listening": state["results"].get("listening"),
              "gallery_switch": state["results"].get("gallery_switch"),
              "gallery_switch_cached": state["results"].get("gallery_switch_cached")}
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
        for key, how in (("gallery_switch", ""), ("gallery_switch_cached", ", again (from the gallery cache)")):
            switch = result[key]
            if switch:
                rows = ", ".join(f"{n} {m}" for m, n in switch["gallery_rows"].items())
                print(f"Switching to a gallery of {switch['images']} images ({rows} rows){how}: ready in "
                      f"{switch['seconds_to_ready']} s, progress shown {switch['progress_updates']} times, then a "
                      f"text query in {switch['first_query_ms']} ms")
                print(_stall_line(switch["stall_ms"], targets=True))
        print(f"  launch to window   {result['launch_to_window_s']:.2f} s   (target <= 3 s)")
        print("targets:\n" + bench.targets_table())
    return 0


def _targets(result: dict) -> dict:
    """The studio's responsiveness targets, in the benchmarks' one shape (engine/bench/result.py)."""
    targets = {}
    phases = {"training": result, "fast_steps": result.get("fast_steps"), "queries": result.get("query_stream"),
              "joint_space": result.get("joint_space"), "listening": result.get("listening"),
              "gallery_switch": result.get("gallery_switch"),
              "gallery_switch_cached": result.get("gallery_switch_cached")}
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
    cached = result.get("gallery_switch_cached")
    if cached:
        targets["gallery_switch_cached: seconds to its first answer"] = Target(
            CACHED_GALLERY_S, round(cached["seconds_to_ready"] + cached["first_query_ms"] / 1000, 2), at_most=True)
    targets["launch to window (s)"] = Target(LAUNCH_S, result["launch_to_window_s"], at_most=True)
    return targets


def _what_ran(args) -> dict:
    from engine.bench.machine import describe
    from engine.config import load_config
    from engine.device import pick_device
    device = pick_device(args.device)
    return describe(device, load_config(args.config or "tiny").precision)
