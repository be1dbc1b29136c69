"""Process-wide settings of the studio, in one place. Every entry point (the window, the UI bench, the
screenshot script, the tests' window fixture) calls `make_app` (or `configure` on its own application)
before the engine starts; nothing else changes them.

- The GIL switch interval: the trainer's Python code holds the GIL between torch calls; 2 ms instead of
  the default 5 ms hands it back to the UI thread sooner, which keeps the event loop's stalls short.
- Garbage collection on the UI thread only (`studio/gc_guard.py` says why).
- pyqtgraph's options: antialiasing, and colours that follow the palette (light and dark desktops).
- Torch's threads: each thread that runs torch calls `leave_a_core_for_the_ui` first.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

SWITCH_INTERVAL_S = 0.002
LAUNCHED = time.perf_counter()


def make_app(argv: list[str]):
    """The QApplication, configured (made if there is none yet)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("NLMM Studio")
    app.setOrganizationName("nlmm")
    configure(app)
    return app


def configure(app) -> None:
    """Settings that need the application: the plots' palette, the UI thread's garbage collector."""
    from studio import gc_guard
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    configure_plots(app)
    gc_guard.install()


def configure_plots(app) -> None:
    """Plots follow the palette, so they are readable on light and dark desktops alike (call again after
    changing the palette)."""
    import pyqtgraph as pg
    from PySide6.QtGui import QPalette
    palette = app.palette()
    pg.setConfigOptions(antialias=True, background=palette.color(QPalette.Base),
                        foreground=palette.color(QPalette.Text))


def leave_a_core_for_the_ui() -> None:
    """Big work (training, galleries) runs on one core fewer than the process may use; queries run on one
    thread (engine.threads). With all cores busy in torch, the UI thread's painting preempts a worker of a
    parallel region and the others wait for it at the barrier; on 2 cores that made training 3x slower in
    the studio and the UI stutter."""
    import torch
    from engine.threads import reserve_cores, work_threads
    reserve_cores(1)
    torch.set_num_threads(work_threads())


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; otherwise since this module was imported)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / ticks)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - LAUNCHED
