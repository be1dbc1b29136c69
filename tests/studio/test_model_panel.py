"""Model & levels: live validation from ConfigError, the level table, presets, YAML round trip."""
from __future__ import annotations

from PySide6.QtCore import Qt


def _chunk_cell(panel, row):
    return panel.level_table.table.item(row, 1)


def test_a_bad_chunk_size_shows_the_message_and_disables_train_until_fixed(make_window, qtbot):
    window = make_window(load_checkpoint=False)
    panel, train = window.model_panel, window.training_panel.train_button
    assert panel.valid and train.isEnabled()

    _chunk_cell(panel, 1).setText("0")
    assert not panel.valid
    assert "cms_levels[1].chunk_size: must be >= 1, got 0" in panel.status.text()
    assert not train.isEnabled() and "cms_levels[1].chunk_size" in train.toolTip()
    window.activate(qtbot)
    qtbot.keyClick(window, Qt.Key_Return, Qt.ControlModifier)   # Ctrl+Enter does not start a run
    assert window.training_panel.state == "idle"

    _chunk_cell(panel, 1).setText("two")
    assert "cms_levels[1].chunk_size: must be a whole number of steps, got 'two'" in panel.status.text()

    _chunk_cell(panel, 1).setText("4")
    assert panel.valid and train.isEnabled()
    assert panel.config().cms_levels[1].chunk_size == 4


def test_the_level_table_adds_removes_and_reorders_levels(make_window, qtbot):
    window = make_window(load_checkpoint=False)
    panel = window.model_panel
    qtbot.waitUntil(lambda: panel.param_label.text() != "Parameters: –", timeout=30_000)
    before = panel.param_label.text()

    levels = panel.level_table
    levels.add_button.click()
    assert [level.name for level in panel.config().cms_levels] == ["fast", "slow", "level3"]
    qtbot.waitUntil(lambda: panel.param_label.text() not in ("Parameters: –", before), timeout=30_000)

    levels.table.cellWidget(2, 3).setCurrentText("sgd")      # the optimizer comes from a list
    assert panel.config().cms_levels[2].optimizer == "sgd"
    levels.table.selectRow(2)
    levels.up_button.click()
    assert [level.name for level in panel.config().cms_levels] == ["fast", "level3", "slow"]
    levels.table.item(1, 0).setText("slow")                  # a duplicate name is caught
    assert not panel.valid and "duplicate level name" in panel.status.text()
    levels.table.item(1, 0).setText("mid")
    levels.table.selectRow(1)
    levels.remove_button.click()
    assert [level.name for level in panel.config().cms_levels] == ["fast", "slow"]
    assert panel.valid


def test_ttt_settings_presets_and_yaml_round_trip(make_window, tmp_path):
    from engine.config import load_config
    window = make_window(load_checkpoint=False)
    panel = window.model_panel
    panel.fields["ttt.topk"].setValue(99)
    assert not panel.valid and panel.status.text().startswith("⚠ ttt.topk")
    panel.fields["ttt.topk"].setValue(3)
    panel.fields["ttt.mode"].setCurrentText("l2_regression")
    target = tmp_path / "mine.yaml"
    window.dialogs.answers = [str(target)]
    window.save_config()                                   # Ctrl+S
    saved = load_config(target)
    assert saved.ttt.topk == 3 and saved.ttt.mode == "l2_regression"

    panel.preset.setCurrentText("paper_exact")
    panel.preset_button.click()
    assert panel.config().cms_mode == "nested"
    window.dialogs.answers = [str(target)]
    window.open_config()                                   # Ctrl+O
    assert panel.config().ttt.mode == "l2_regression" and panel.config().name == "studiotest"
