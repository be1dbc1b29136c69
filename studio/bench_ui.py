"""`nlmm-studio --bench-ui`: how responsive the window stays while the worker trains.

A UI-thread heartbeat timer fires every 5 ms; any lateness beyond that is an event-loop stall (the UI
thread was busy, or waited for the GIL). Training runs the `tiny` config on the built-in set in the
worker, with every curve and the memory view updating as in normal use. Printed: p50 / p99 / max
stall, curve redraws per second, memory frames per second, and the time from process start to a
usable window.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEARTBEAT_MS = 5


def run_bench(args) -> int:
    from studio.app import make_app, process_age_s
    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"   # a headless machine: measure without a screen
    app = make_app([sys.argv[0]])
    from PySide6.QtCore import QSettings, Qt, QTimer
    from studio.main_window import MainWindow, StudioOptions

    scratch = Path(tempfile.mkdtemp(prefix="nlmm-bench-ui-"))
    options = StudioOptions(settings=QSettings(str(scratch / "settings.ini"), QSettings.IniFormat),
                            runs_dir=scratch / "runs", config=args.config or "tiny", device=args.device,
                            load_checkpoint_on_start=False)
    window = MainWindow(options)
    window.show()
    state: dict = {"ticks": [], "measuring": False, "launch": None, "error": None}

    def usable() -> None:
        state["launch"] = process_age_s()
        window.model_panel.fields["train.steps"].setValue(1_000_000)
        window.training_panel.set_data_spec("builtin")
        window.training_panel.start()

    def tick() -> None:
        if state["measuring"]:
            state["ticks"].append(time.perf_counter())

    def first_update(_update) -> None:
        if state["measuring"]:
            return
        state["measuring"] = True
        state["redraws0"] = window.training_panel.redraws
        state["frames0"] = window.memory_panel.frames_drawn
        state["steps0"] = window.training_panel.step
        state["t0"] = time.perf_counter()
        QTimer.singleShot(int(args.seconds * 1000), finish)

    def finish() -> None:
        state["t1"] = time.perf_counter()
        state["redraws1"] = window.training_panel.redraws
        state["frames1"] = window.memory_panel.frames_drawn
        state["steps1"] = window.training_panel.step
        state["measuring"] = False
        window.close()
        app.quit()

    def failed(topic: str, message: str) -> None:
        state["error"] = f"{topic}: {message}"
        window.close()
        app.quit()

    window.host.worker.training_update.connect(first_update)
    window.host.worker.error.connect(failed)
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

    ticks = np.asarray(state["ticks"])
    stalls = np.maximum(0.0, np.diff(ticks) * 1000 - HEARTBEAT_MS) if len(ticks) > 1 else np.zeros(1)
    seconds = state["t1"] - state["t0"]
    result = {"stall_ms": {"p50": round(float(np.percentile(stalls, 50)), 2),
                           "p99": round(float(np.percentile(stalls, 99)), 2),
                           "max": round(float(stalls.max()), 2)},
              "redraws_per_s": round((state["redraws1"] - state["redraws0"]) / seconds, 1),
              "memory_frames_per_s": round((state["frames1"] - state["frames0"]) / seconds, 1),
              "training_steps_per_s": round((state["steps1"] - state["steps0"]) / seconds, 2),
              "launch_to_window_s": round(state["launch"], 2),
              "seconds": round(seconds, 1), "heartbeat_ms": HEARTBEAT_MS}
    if args.json:
        print(json.dumps(result))
    else:
        stall = result["stall_ms"]
        print(f"UI responsiveness while training ({result['seconds']} s, heartbeat every {HEARTBEAT_MS} ms, "
              f"{result['training_steps_per_s']} training steps/s)")
        print(f"  event-loop stall   p50 {stall['p50']:.1f} ms   p99 {stall['p99']:.1f} ms   max {stall['max']:.1f} ms"
              "   (targets: p99 <= 20 ms, max <= 50 ms)")
        print(f"  redraws            {result['redraws_per_s']:.1f} curve redraws/s, "
              f"{result['memory_frames_per_s']:.1f} memory frames/s")
        print(f"  launch to window   {result['launch_to_window_s']:.2f} s   (target <= 3 s)")
    return 0
