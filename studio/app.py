"""Entry point of `nlmm-studio`: the desktop window (`--bench-ui` runs the UI bench, `studio/bench_ui.py`)."""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path


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
                        help="measure event-loop stalls while training runs, then exit (the same as nlmm-studio-bench)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="--bench-ui: seconds of each phase, training then the query stream (default 20)")
    parser.add_argument("--json", action="store_true", help="--bench-ui: print the figures as JSON")
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bench_ui:
        from studio import bench_ui
        return bench_ui.run(args)
    from studio.bootstrap import make_app
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
