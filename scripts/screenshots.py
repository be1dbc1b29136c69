"""Drive the studio through each panel and save a PNG of each (run it under Xvfb: scripts/screenshots.sh).

    python scripts/screenshots.py [--out docs/screenshots] [--checkpoint PATH] [--steps 40]

Model & levels (the tiny preset), Training (a short live run of the tiny config on the built-in set),
Retrieval (a text, an image and an audio-file query, a number drawn on the sketch pad with mouse drags in a
stroke family training never draws),
Memory (after adaptive queries), Joint space (the gallery's map with an adapted query), two past runs
compared (two short real runs of the tiny config). `--only 3-retrieval-sketch,2-compare-runs` saves just
those (and skips what no shot needs: the runs to compare, the live training run).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--checkpoint", default=None, help="default: the shipped demo model")
    parser.add_argument("--steps", type=int, default=40, help="training steps to show live")
    parser.add_argument("--size", default="1440x900")
    parser.add_argument("--dark", action="store_true", help="a dark palette (Fusion style), to check readability")
    parser.add_argument("--compare-steps", type=int, default=120, help="steps of each of the two runs compared")
    parser.add_argument("--compare-from", help="a folder of runs to compare instead of training two")
    parser.add_argument("--only", default="", help="comma-separated shot names to save (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from studio.bootstrap import configure_plots, make_app
    app = make_app([sys.argv[0]])
    if args.dark:
        from PySide6.QtGui import QColor, QPalette
        app.setStyle("Fusion")
        dark = QPalette()
        for role, color in ((QPalette.Window, "#2b2b2b"), (QPalette.WindowText, "#e6e6e6"),
                            (QPalette.Base, "#1e1e1e"), (QPalette.AlternateBase, "#2b2b2b"),
                            (QPalette.Text, "#e6e6e6"), (QPalette.Button, "#353535"),
                            (QPalette.ButtonText, "#e6e6e6"), (QPalette.Highlight, "#2a82da"),
                            (QPalette.HighlightedText, "#ffffff"), (QPalette.ToolTipBase, "#353535"),
                            (QPalette.ToolTipText, "#e6e6e6"), (QPalette.PlaceholderText, "#8c8c8c")):
            dark.setColor(role, QColor(color))
        dark.setColor(QPalette.Disabled, QPalette.Text, QColor("#7a7a7a"))
        dark.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#7a7a7a"))
        app.setPalette(dark)
        configure_plots(app)                # the plots follow the palette, as on a dark desktop
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    from studio.dialogs import ScriptedDialogs
    from studio.main_window import DEFAULT_CHECKPOINT, MainWindow, StudioOptions

    scratch = Path(tempfile.mkdtemp(prefix="nlmm-shots-"))
    if args.compare_from:                   # runs made before (they take minutes on a busy machine)
        import shutil
        for run in Path(args.compare_from).iterdir():
            if run.is_dir():
                shutil.copytree(run, scratch / "runs" / run.name)
    elif not args.only or "2-compare-runs" in args.only:
        make_runs_to_compare(scratch / "runs", args.compare_steps)
    checkpoint = args.checkpoint or str(DEFAULT_CHECKPOINT)
    window = MainWindow(StudioOptions(settings=QSettings(str(scratch / "s.ini"), QSettings.IniFormat),
                                      runs_dir=scratch / "runs", checkpoint=checkpoint, config="tiny",
                                      gallery_size=100, dialogs=ScriptedDialogs()))
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()

    def wait(condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"screenshots: timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def pause(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)

    only = {name.strip() for name in args.only.split(",") if name.strip()}

    def wanted(*names: str) -> bool:
        return not only or bool(only & set(names))

    def shot(name: str, panel: str) -> None:
        if not wanted(name):
            return
        window.show_panel(panel)
        pause(0.6)
        path = out / f"{name}.png"
        window.grab().save(str(path))
        print(f"saved {path}")

    errors: list[str] = []
    window.host.failed.connect(lambda title, message: errors.append(f"{title}: {message}"))
    wait(lambda: window.model_panel.param_label.text() != "Parameters: –" or errors, 120, "the parameter count")
    shot("1-model-and-levels", "model")

    retrieval = window.retrieval_panel
    wait(lambda: retrieval.gallery_ready or errors, 600, "the gallery")
    if errors:
        raise SystemExit(f"screenshots: {errors[0]}")

    # --- retrieval: text, image, audio file
    from engine.data.sources import load_source
    test = load_source("builtin").splits["test"]
    retrieval.k.setValue(5)

    shown = []
    retrieval.results.shown.connect(shown.append)

    def query(action) -> None:
        before = len(shown)
        action()
        wait(lambda: len(shown) > before or errors, 120, "a query")

    retrieval.text.setText("forty two")
    query(retrieval.query_text)
    shot("3-retrieval-text", "retrieval")
    query(lambda: retrieval.query_file(str(test[37].image)))
    shot("3-retrieval-image", "retrieval")
    query(lambda: retrieval.query_file(str(test[123].audio)))
    shot("3-retrieval-audio", "retrieval")
    if wanted("3-retrieval-sketch"):
        window.show_panel("retrieval")
        pause(0.3)
        draw_number(retrieval.sketch.pad, 42)
        wait(lambda: not retrieval.sketch.pad.busy() and retrieval.results._due is None, 60, "the drawing's query")
        shot("3-retrieval-sketch", "retrieval")
        retrieval.sketch.pad.clear()

    # --- a correction: a number in a handwriting the model never saw, misread, then its right answer typed;
    # asked again, it is read right, and the Memory panel lists what was taught and what it moved
    if wanted("3-retrieval-correction", "4-memory-corrections"):
        import numpy as np
        from PIL import Image
        from engine.data.printed import compose, handwriting_styles
        atlas, rng = handwriting_styles()["Because We Create Regular"], np.random.default_rng(4)
        for number in (47, 58, 63, 74, 86, 91, 29, 35):
            path = scratch / f"my-{number}.png"
            Image.fromarray(compose(number, atlas, rng)).save(path)
            query(lambda path=path: retrieval.query_file(str(path)))
            if shown[-1].results["text"][0].label != number:
                break
        results = retrieval.results
        results.right_label.setText(str(number))
        learnt = len(window.memory_panel.frames)
        results.learn_button.click()
        wait(lambda: results.learnt_label.text().startswith("✓") or errors, 60, "the correction")
        wait(lambda: len(window.memory_panel.frames) > learnt, 10, "the memory frame")
        query(lambda: retrieval.query_file(str(path)))
        results.learnt_label.setText(results.learnt_label.text() + "  Asked again: "
                                     f"{shown[-1].results['text'][0].caption!r}")
        shot("3-retrieval-correction", "retrieval")
        window.show_panel("memory")
        session = window.host.retrieval   # the steps consolidating it, taken while nothing is asked
        wait(lambda: session.retriever.corrections.consolidation_due() == 0 or errors, 30, "the consolidation")
        pause(0.3)
        window.memory_panel.corrections.rows.setCurrentRow(0)
        shot("4-memory-corrections", "memory")
        retrieval.reset_memory()

    # --- memory after adaptive queries, every kind of learner on (the default leaves HOPE and the fast level
    # off: the projections view would stay empty)
    for learner in ("hope", "cms_fast"):
        retrieval.options.learner_actions[learner].setChecked(True)
    retrieval.adapt.setChecked(True)
    for item in test[200:206]:
        query(lambda item=item: retrieval.query_file(str(item.image)))
    # noisy, pitch-shifted recordings (as `nlmm bench ttt` makes them): the audio domain memory routes them
    import soundfile
    from engine.bench.shifts import pitched_with_white_noise
    from engine.data.audio import load_audio
    from engine.vocabulary import SAMPLE_RATE
    noisy = Path(tempfile.mkdtemp(prefix="nlmm-noisy-"))
    waves = pitched_with_white_noise([load_audio(item.audio, SAMPLE_RATE, 10.0) for item in test[300:305]], SAMPLE_RATE)
    for n, (wave, _) in enumerate(waves):
        path = noisy / f"noisy-{n}.wav"
        soundfile.write(str(path), wave, SAMPLE_RATE)
        query(lambda path=path: retrieval.query_file(str(path)))
    retrieval.text.setText("sixty one")
    query(retrieval.query_text)
    shot("4-memory-after-adaptation", "memory")

    # --- the joint space: the gallery's map, an adapted query's star and its lines, a point hovered
    if wanted("5-joint-space"):
        joint = window.joint_panel
        window.show_panel("joint")
        wait(lambda: (joint.map is not None and joint.map.method == "tsne") or errors, 180,
             "the joint space's neighbourhood map")
        retrieval.text.setText("forty two")
        query(retrieval.query_text)
        pause(0.5)
        hover_first_hit(joint)
        shot("5-joint-space", "joint")
    retrieval.adapt.setChecked(False)

    # --- two past runs compared (made by make_runs_to_compare)
    if wanted("2-compare-runs"):
        from PySide6.QtCore import QItemSelectionModel
        history = window.training_panel.history
        window.show_panel("training")
        history.refresh()
        wait(lambda: history.listing is None and history.runs.count() >= 2, 30, "the run history")
        for row in range(2):
            history.runs.selectionModel().select(history.runs.model().index(row, 0), QItemSelectionModel.Select)
        history.compare_button.click()
        wait(lambda: window.training_panel.stack.currentWidget() is window.training_panel.comparison, 60,
             "the comparison")
        window.training_panel.comparison.loss_choice.setCurrentText("image-text")
        window.training_panel.comparison.lr_choice.setCurrentText("mid")
        shot("2-compare-runs", "training")

    # --- training: a short live run of the tiny config on the built-in set
    if not wanted("2-training"):
        window.close()
        QTimer.singleShot(0, app.quit)
        app.exec()
        return 0
    model = window.model_panel
    model.set_field("train.steps", 10_000)
    model.set_field("train.eval_every", max(5, args.steps // 3))
    training = window.training_panel
    training.set_data_spec("builtin")
    training.start()
    wait(lambda: training.step >= args.steps or errors, 1800, f"{args.steps} training steps")
    shot("2-training", "training")
    training.stop()
    wait(lambda: training.state == "idle", 300, "training to stop")

    window.close()
    QTimer.singleShot(0, app.quit)
    app.exec()
    if errors:
        print("errors seen:", *errors, sep="\n  ")
    return 0


def make_runs_to_compare(runs_dir: Path, steps: int) -> None:
    """Two short real runs of the tiny config whose "mid" level differs (DMGD against AdamW at a lower
    rate), for the "Compare runs" screenshot. They train on a slice of the built-in set (its files, as a
    folder data set) so that each evaluation takes a moment, not a minute."""
    import csv

    from engine.config import config_from_dict, config_to_dict, load_config
    from engine.data.builtin import load_builtin_manifest
    from engine.training.trainer import Trainer
    manifest = load_builtin_manifest()
    data_dir = runs_dir.parent / "compare-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "items.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "text", "audio", "label", "split"])
        for split, count in (("train", 600), ("val", 100)):
            items = manifest[split]
            for item in items[:: max(1, len(items) // count)][:count]:
                writer.writerow([item.image, item.text, item.audio, item.label, split])
    for name, optimizer, lr in (("tiny-mid-dmgd", "dmgd", 2e-2), ("tiny-mid-adamw", "adamw", 1e-3)):
        data = config_to_dict(load_config("tiny"))
        data["cms_levels"][1].update(optimizer=optimizer, lr=lr)
        data["data"]["batch_size"] = 32
        data["train"].update(steps=steps, warmup_steps=10, eval_every=max(10, steps // 6), checkpoint_every=steps)
        started = time.monotonic()
        ended = Trainer(config_from_dict(data), data=f"folder:{data_dir}", out_dir=runs_dir / name,
                        tensorboard=False).run()
        print(f"run {name}: {ended.message} in {time.monotonic() - started:.0f} s", flush=True)


def hover_first_hit(joint) -> None:
    """The mouse over the query's best image on the map: the panel shows that item."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtTest import QTest
    hits = joint.answer.results.get("image") or next(iter(joint.answer.results.values()))
    row = joint.map.row_of(hits[0])
    if row is None:
        return
    x, y = (float(v) for v in joint.map.points[row])
    where = joint.plot_widget.mapFromScene(joint.plot.vb.mapViewToScene(QPointF(x, y)))
    QTest.mouseMove(joint.plot_widget.viewport(), QPoint(where.x(), where.y()))


def draw_number(pad, number: int, family: str = "cursive") -> None:
    """Draws `number` on the sketch pad with real mouse drags, as a hand would in `family`: a Hershey stroke
    family training never draws (strokes.json "heldout"), moved along a made-up pen trajectory."""
    import numpy as np
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    from engine.data.sketched import stroke_families
    from engine.data.trajectories import trajectory
    digits = stroke_families("heldout")[family]
    width, height = pad.width(), pad.height()
    for stroke in trajectory(number, digits, np.random.default_rng(number), aspect=width / height):
        points = [QPoint(round(x * (width - 1)), round(y * (height - 1))) for x, y in stroke]
        QTest.mousePress(pad, Qt.LeftButton, Qt.NoModifier, points[0])
        for point in points[1:]:
            QTest.mouseMove(pad, point)
        QTest.mouseRelease(pad, Qt.LeftButton, Qt.NoModifier, points[-1])


if __name__ == "__main__":
    sys.exit(main())
