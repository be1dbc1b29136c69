"""Entry point of `nlmm-studio`: the desktop window, or `--bench-ui` to measure its responsiveness."""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

LAUNCHED = time.perf_counter()


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; otherwise since this module was imported)."""
    try:
        import os
        ticks = os.sysconf("SC_CLK_TCK")
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / ticks)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - LAUNCHED


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nlmm-studio", description="NLMM Studio: configure, train and "
                                     "query Nested-Learning multimodal models")
    parser.add_argument("--checkpoint", help="checkpoint to open in the Retrieval panel "
                        "(default: the last one used, else the shipped demo model)")
    parser.add_argument("--config", help="config YAML or preset to open (default: the last one used, else tiny)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present, else CPU)")
    parser.add_argument("--gallery-size", type=int, default=None,
                        help="items embedded for retrieval (default: the last choice in the Retrieval panel, else 200)")
    parser.add_argument("--runs", default="runs", help="folder of training runs (default ./runs)")
    parser.add_argument("--bench-ui", action="store_true",
                        help="measure event-loop stalls while training runs in the worker, then exit")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="--bench-ui: seconds of each phase, training then the query stream (default 20)")
    parser.add_argument("--json", action="store_true", help="--bench-ui: print the figures as JSON")
    return parser.parse_args(argv)


def configure_pyqtgraph(app) -> None:
    """Plots follow the palette, so they are readable on light and dark desktops alike."""
    import pyqtgraph as pg
    from PySide6.QtGui import QPalette
    palette = app.palette()
    pg.setConfigOptions(antialias=True, background=palette.color(QPalette.Base),
                        foreground=palette.color(QPalette.Text))


def install_excepthook(window_getter) -> None:
    """An exception escaping a slot is reported (status bar + stderr); the window goes on."""
    def hook(kind, value, tb):
        traceback.print_exception(kind, value, tb)
        window = window_getter()
        if window is not None:
            try:
                window.show_message(f"Unexpected error: {kind.__name__}: {value}", 20000)
            except Exception:  # noqa: BLE001
                pass
    sys.excepthook = hook


def make_app(argv: list[str]):
    # The trainer's Python code holds the GIL between torch calls; a shorter switch interval (default
    # 5 ms) hands it back to the UI thread sooner, which keeps the event loop's stalls short.
    sys.setswitchinterval(0.002)
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("NLMM Studio")
    app.setOrganizationName("nlmm")
    configure_pyqtgraph(app)
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bench_ui:
        from studio.bench_ui import run_bench
        return run_bench(args)
    app = make_app([sys.argv[0]])
    from studio.main_window import MainWindow, StudioOptions
    options = StudioOptions(runs_dir=Path(args.runs).resolve(), checkpoint=args.checkpoint, config=args.config,
                            gallery_size=args.gallery_size, device=args.device)
    window = MainWindow(options)
    install_excepthook(lambda: window)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
