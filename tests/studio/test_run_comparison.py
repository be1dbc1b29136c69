"""Compare runs, as a user does it: two real training runs in the run history, Ctrl+click both, Compare;
their curves overlaid and their configs' differences side by side."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.studio.conftest import small_config_dict


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, data_dir):
    """Two real runs of 4 steps, evaluated every 2, whose configs differ in the slow level's rate and
    cadence; and a copy of the first without its config.yaml."""
    from engine.config import config_from_dict
    from engine.training.trainer import Trainer
    root = tmp_path_factory.mktemp("runs")
    for name, lr, chunk in (("run-a", 1e-2, 3), ("run-b", 5e-3, 2)):
        data = small_config_dict(steps=4)
        data["train"]["eval_every"] = 2
        data["cms_levels"][1].update(lr=lr, chunk_size=chunk)
        Trainer(config_from_dict(data), data=f"folder:{data_dir}", out_dir=root / name, tensorboard=False).run()
    shutil.copytree(root / "run-a", root / "run-c")
    (root / "run-c" / "config.yaml").unlink()
    return root


def _click(history, name: str, modifier=Qt.NoModifier) -> None:
    from pathlib import Path
    listing = history.runs
    item = next(listing.item(i) for i in range(listing.count()) if Path(listing.item(i).data(Qt.UserRole)).name == name)
    listing.scrollToItem(item)
    from pytestqt.qtbot import QtBot
    QtBot.mouseClick(listing.viewport(), Qt.LeftButton, modifier, listing.visualItemRect(item).center())


@pytest.fixture
def training(make_window, qtbot, runs_dir):
    window = make_window(load_checkpoint=False, runs_dir=runs_dir)
    window.show_panel("training")
    panel = window.training_panel
    qtbot.waitUntil(lambda: panel.history.runs.count() == 3, timeout=30_000)
    qtbot.waitExposed(panel.history.runs)
    return window, panel


def _compare(qtbot, panel, *names):
    _click(panel.history, names[0])
    for name in names[1:]:
        _click(panel.history, name, Qt.ControlModifier)
    assert panel.history.compare_button.isEnabled(), panel.history.compare_button.toolTip()
    qtbot.mouseClick(panel.history.compare_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.stack.currentWidget() is panel.comparison
                    and [r.name for r in panel.comparison.runs] == sorted(names, reverse=True), timeout=30_000)
    return panel.comparison


def test_two_runs_overlaid_with_their_configs_differences(training, qtbot, runs_dir):
    from engine.training.runs import read_run
    window, panel = training
    history = panel.history
    assert not history.compare_button.isEnabled(), "nothing selected: nothing to compare"
    _click(history, "run-a")
    assert not history.compare_button.isEnabled(), "one run is not a comparison"
    comparison = _compare(qtbot, panel, "run-a", "run-b")
    logs = {name: read_run(runs_dir / name) for name in ("run-b", "run-a")}

    # loss: one curve a run, all its steps; the pair picked above the plot is the one drawn
    for run, items in zip(comparison.runs, comparison.items):
        x, y = items["raw"].getData()
        assert list(x) == [1, 2, 3, 4]
        assert np.allclose(y, [s.loss for s in logs[run.name].steps])
    comparison.loss_choice.setCurrentText("image-text")
    x, y = comparison.items[1]["raw"].getData()
    assert np.allclose(y, [s.pair_losses["image-text"] for s in logs["run-a"].steps])

    # recall@1 per direction, as evaluated
    comparison.recall_choice.setCurrentText("audio->image")
    x, y = comparison.items[0]["recall"].getData()
    assert list(x) == [e.step for e in logs["run-b"].evaluations] and len(x) >= 2
    assert np.allclose(y, [100 * e.recall["audio->image"]["R@1"] for e in logs["run-b"].evaluations])

    # learning rate per level: the slow level's rates differ as the configs do
    assert [comparison.lr_choice.itemText(i) for i in range(comparison.lr_choice.count())] == ["fast", "slow", "outer"]
    comparison.lr_choice.setCurrentText("slow")
    rate_b, rate_a = (items["lr"].yData for items in comparison.items)     # as given, not the log axis's
    assert rate_a.max() > rate_b.max() and np.isclose(rate_a.max() / rate_b.max(), 2.0, rtol=0.2)

    # the configs' differences, one row a setting, one column a run
    table = comparison.differences
    rows = {table.verticalHeaderItem(r).text(): [table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())}
    assert [table.horizontalHeaderItem(c).text() for c in range(2)] == ["run-b", "run-a"]
    assert rows["cms_levels[1].lr"] == ["0.005", "0.01"]
    assert rows["cms_levels[1].chunk_size"] == ["2", "3"]
    assert "d_model" not in rows, "settings that are the same are not listed"
    assert comparison.problems.text() == ""

    qtbot.mouseClick(comparison.back_button, Qt.LeftButton)
    assert panel.stack.currentWidget() is panel.curves
    assert not window.errors


def test_a_run_without_its_config_is_compared_by_its_curves_and_says_why(training, qtbot):
    window, panel = training
    comparison = _compare(qtbot, panel, "run-a", "run-c")
    assert all(len(items["raw"].getData()[0]) == 4 for items in comparison.items)
    table = comparison.differences
    assert table.rowCount() == 1 and "fewer than two runs have a config" in table.verticalHeaderItem(0).text()
    assert table.item(0, 0).text() == "no config"      # run-c, listed first
    assert "run-c: no config.yaml" in comparison.problems.text()
    assert not window.errors


def test_a_new_run_brings_its_live_curves_back_in_front_of_a_comparison(make_window, qtbot, runs_dir, data_dir,
                                                                       tmp_path):
    own = tmp_path / "runs"                 # the new run must not join the other tests' runs
    shutil.copytree(runs_dir, own)
    window = make_window(load_checkpoint=False, runs_dir=own)
    window.show_panel("training")
    panel = window.training_panel
    qtbot.waitUntil(lambda: panel.history.runs.count() == 3, timeout=30_000)
    qtbot.waitExposed(panel.history.runs)
    _compare(qtbot, panel, "run-a", "run-b")
    assert not panel.curves.in_view, "the live curves do not draw behind the comparison"
    window.model_panel.set_field("train.steps", 3)
    panel.set_data_spec(f"folder:{data_dir}")
    qtbot.mouseClick(panel.train_button, Qt.LeftButton)
    with qtbot.waitSignal(panel.run.began, timeout=60_000):
        pass
    assert panel.stack.currentWidget() is panel.curves and panel.curves.in_view
    qtbot.waitUntil(lambda: panel.state == "idle", timeout=60_000)
    qtbot.waitUntil(lambda: panel.history.runs.count() == 4 and panel.history.listing is None, timeout=10_000)
    assert not window.errors
