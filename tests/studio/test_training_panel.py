"""Training from the panel: curves and level markers arrive, pause / resume / stop, a clean close."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.events import StepMetrics


def _start(window, qtbot, steps: int):
    window.model_panel.set_field("train.steps", steps)
    panel = window.training_panel
    panel.set_data_spec(f"folder:{window.options.gallery_source.split(':', 1)[1]}")
    assert panel.train_button.isEnabled(), panel.train_button.toolTip()
    qtbot.mouseClick(panel.train_button, Qt.LeftButton)
    run = panel.run                         # the handle the window got from the training session
    with qtbot.waitSignal(run.began, timeout=60_000) as blocker:
        pass
    return panel, run, blocker.args[0]


def test_training_from_the_panel_plots_curves_and_level_steps_then_pauses_resumes_and_stops(make_window, qtbot):
    window = make_window(load_checkpoint=False)
    panel, run, started = _start(window, qtbot, steps=500)
    curves = panel.curves
    assert started.levels == ("fast", "slow")

    qtbot.waitUntil(lambda: curves.curve_points()["level_steps"]["slow"] >= 2, timeout=60_000)
    points = curves.curve_points()
    assert points["loss"]["total"] >= 6 and points["loss"]["image-text"] >= 6
    assert points["lr"]["fast"] >= 6 and points["lr"]["outer"] >= 6
    # the slow level (chunk size 3) steps on steps 3, 6, …; the fast one on every step
    slow = curves.level_steps["slow"].view()
    assert all(step % 3 == 0 for step in slow)
    assert points["level_steps"]["fast"] >= points["level_steps"]["slow"] * 3 - 2
    assert panel.progress.value() > 0 and "samples/s" in panel.rate_label.text()
    runs = panel.history.runs
    qtbot.waitUntil(lambda: runs.currentItem() is not None and f"{panel.step}/500 steps" in runs.currentItem().text(),
                    timeout=10_000)
    assert window.memory_panel.shown is None, "the Memory panel's tab is behind: nothing drawn there yet"
    window.show_panel("memory")                 # its tab in front: the newest frame is drawn at once
    assert window.memory_panel.shown is not None and window.memory_panel.shown.source == "training"
    assert window.memory_panel.total_change() > 0, "the slots moved since the run started"
    window.show_panel("training")

    with qtbot.waitSignal(run.state_changed, timeout=30_000) as blocker:
        qtbot.mouseClick(panel.pause_button, Qt.LeftButton)
    assert blocker.args == ["paused"] and panel.state == "paused"
    assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
    paused_at = curves.curve_points()["loss"]["total"]
    qtbot.wait(400)
    assert curves.curve_points()["loss"]["total"] == paused_at, "no steps while paused"

    with qtbot.waitSignal(run.state_changed, timeout=30_000) as blocker:
        qtbot.mouseClick(panel.resume_button, Qt.LeftButton)
    assert blocker.args == ["resumed"]
    qtbot.waitUntil(lambda: curves.curve_points()["loss"]["total"] > paused_at + 2, timeout=60_000)

    with qtbot.waitSignal(run.result, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    ended = blocker.args[0]
    assert ended.kind == "stopped" and Path(ended.checkpoint).is_file()
    assert panel.state == "idle" and panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: runs.count() == 1 and "training" not in runs.item(0).text(), timeout=10_000)
    assert (Path(started.out_dir) / "metrics.jsonl").is_file()


def test_smoothing_slider_and_log_axis_redraw_the_loss(make_window, qtbot):
    window = make_window(load_checkpoint=False)
    panel = window.training_panel.curves
    panel.clear(["fast"])
    panel.add([StepMetrics(i, 3.0 - 0.1 * i + (0.3 if i % 2 else 0.0), pair_losses={"image-text": 2.0},
                           lrs={"fast": 1e-3, "outer": 1e-3}, stepped_levels=("fast",)) for i in range(1, 21)])
    raw = panel.loss_series["total"].y.view().copy()
    panel.smoothing.setValue(0)
    assert (panel.loss_series["total"].smooth.view() == raw).all()
    panel.smoothing.setValue(90)
    smooth = panel.loss_series["total"].smooth.view()
    assert smooth[0] == raw[0], "debiased: the first point is not pulled towards zero"
    assert smooth.std() < raw.std()
    panel.log_y.setChecked(True)
    assert panel.loss_plot.getAxis("left").logMode


def test_closing_the_window_mid_training_stops_cleanly_and_keeps_the_checkpoint(make_window, qtbot, capfd):
    window = make_window(load_checkpoint=False)
    panel, _, started = _start(window, qtbot, steps=10_000)
    qtbot.waitUntil(lambda: panel.curves.curve_points()["loss"]["total"] >= 2, timeout=60_000)
    closing = time.perf_counter()
    window.close()
    assert time.perf_counter() - closing < 30
    assert not window.host.threads()
    assert (Path(started.out_dir) / "checkpoint.pt").is_file(), "the checkpoint is written on the way out"
    assert "QThread" not in capfd.readouterr().err


def _steps(first: int, last: int, loss=lambda i: 3.0 / i) -> list:
    return [StepMetrics(i, loss(i), pair_losses={"image-text": loss(i)}, lrs={"fast": 1e-3, "outer": 2e-3},
                        stepped_levels=("fast",)) for i in range(first, last + 1)]


@pytest.fixture
def curves(make_window):
    """A window with the Training panel in front and empty curves for one level "fast"."""
    window = make_window(load_checkpoint=False)
    window.show_panel("training")
    window.training_panel.curves.clear(["fast"])
    return window, window.training_panel.curves


def test_the_curves_view_follows_a_growing_run_until_the_user_zooms(curves):
    window, panel = curves
    panel.total_steps = 100_000
    panel.add(_steps(1, 30))
    (x0, x1), (y0, y1) = panel.loss_plot.vb.viewRange()
    assert x0 <= 1 and 30 <= x1 <= 60, "x shows the steps so far, not the whole 100 000"
    assert y0 <= 0.1 and y1 >= 3.0, "y shows every loss value"
    panel.add(_steps(31, 45))
    assert panel.loss_plot.vb.viewRange()[0] == [x0, x1], "the view does not move while the data fits"
    panel.add(_steps(46, 250))
    assert panel.loss_plot.vb.viewRange()[0][1] >= 250
    assert panel.recall_plot.vb.viewRange()[1] == [0, 100], "recall keeps its 0-100 % scale"

    panel.loss_plot.vb.setXRange(100, 120, padding=0)
    panel.loss_plot.vb.sigRangeChangedManually.emit([True, True])   # what a mouse zoom reports
    panel.add(_steps(251, 400))
    assert panel.loss_plot.vb.viewRange()[0] == [100, 120], "a zoomed view stays where the user put it"
    panel.loss_plot.vb.enableAutoRange()                           # the "A" button
    panel.add(_steps(401, 402))
    assert panel.loss_plot.vb.viewRange()[0][1] >= 402 and not any(panel.loss_plot.vb.autoRangeEnabled())


def test_level_markers_of_a_long_run_are_thinned_to_the_pixels_of_the_view(curves):
    window, panel = curves
    panel.add(_steps(1, 20_000))
    drawn = panel.level_items["fast"].getData()[0]
    width = panel.steps_plot.vb.width()
    assert 0 < len(drawn) / 2 <= width + 1, "one marker per pixel column at most"
    panel.loss_plot.vb.setXRange(100, 150, padding=0)               # zoomed in: every step is drawn
    x0, x1 = panel.steps_plot.vb.viewRange()[0]                     # (linked views align by pixels)
    xs = panel.level_items["fast"].getData()[0][::2]
    assert set(range(math.ceil(x0), math.floor(x1) + 1)) <= set(xs.astype(int).tolist())
    assert x1 - x0 < 100


def test_stop_while_the_data_set_loads_cancels_the_start(make_window, qtbot, tmp_path):
    import threading
    window = make_window(load_checkpoint=False)
    panel = window.training_panel
    # the engine thread is held busy (as by a checkpoint loading) so that Stop surely lands before the
    # data set is loaded, however fast this machine loads it
    gate = threading.Event()
    window.host.submit("hold", lambda task: gate.wait(30))
    rows = "".join(f"caption {i},{i % 10}\n" for i in range(3000))
    (tmp_path / "items.csv").write_text("text,label\n" + rows)
    panel.set_data_spec(f"folder:{tmp_path}")
    qtbot.mouseClick(panel.train_button, Qt.LeftButton)
    run, outcomes = panel.run, []
    for signal, name in ((run.began, "began"), (run.cancelled, "cancelled"), (run.error, "error")):
        signal.connect(lambda *_, name=name: outcomes.append(name))
    assert panel.state == "starting" and panel.stop_button.isEnabled()
    qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    gate.set()
    qtbot.waitUntil(lambda: bool(outcomes), timeout=30_000)
    assert outcomes == ["cancelled"]
    assert panel.state == "idle" and panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    assert "cancelled" in panel.reason_label.text()
    assert not window.errors, "a cancelled start is not an error"


def test_curves_behind_another_tab_are_drawn_when_their_tab_comes_back(curves):
    window, panel = curves
    panel.add(_steps(1, 10))
    window.show_panel("memory")
    assert not panel.in_view
    drawn = panel.redraws
    panel.add(_steps(11, 40))
    assert panel.redraws == drawn, "no drawing for a hidden panel"
    window.show_panel("training")
    assert panel.redraws == drawn + 1
    assert panel.loss_items["total"][0].xData[-1] == 40


def test_show_curves_reads_a_long_runs_log_off_the_ui_thread(make_window, qtbot, tmp_path, monkeypatch):
    import threading
    from engine.events import record
    from engine.training import runs
    run = tmp_path / "runs" / "20240101-000000-long"
    run.mkdir(parents=True)
    steps = _steps(1, 100_000)
    with (run / "metrics.jsonl").open("w") as handle:
        for step in steps:
            handle.write(json.dumps(record(step)) + "\n")
    read_on = []
    original = runs.read_run
    monkeypatch.setattr(runs, "read_run", lambda folder: read_on.append(threading.current_thread()) or original(folder))
    window = make_window(load_checkpoint=False)
    panel = window.training_panel
    qtbot.waitUntil(lambda: panel.history.runs.count() == 1, timeout=10_000)
    assert "100000/? steps" in panel.history.runs.item(0).text()
    panel.history.runs.setCurrentRow(0)
    qtbot.mouseClick(panel.history.show_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.curves.curve_points()["loss"]["total"] == 100_000, timeout=60_000)
    assert read_on and read_on[0] is not threading.main_thread()
    assert panel.rate_label.text() == "Showing 20240101-000000-long"
