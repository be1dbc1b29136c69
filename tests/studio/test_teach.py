"""Teach in the Retrieval panel, driven as a user would: record and drop items into "my data set", press
Teach, watch it learn; the taught model then answers, with each item's top-1 before and after. Stop
mid-teach leaves the model in use as it was."""
from __future__ import annotations

from PySide6.QtCore import Qt

from tests.studio.test_retrieval_panel import _drop_file


def _record_and_add(window, qtbot, label: str) -> None:
    panel = window.retrieval_panel
    with qtbot.waitSignal(panel.results.shown, timeout=30_000):
        panel.setFocus()
        qtbot.keyClick(panel, Qt.Key_Space)     # Space records; the recording ends at its length limit
    _add(window, qtbot, label)


def _add(window, qtbot, label: str) -> None:
    panel = window.retrieval_panel
    panel.dataset.label.setText(label)
    with qtbot.waitSignal(panel.message, timeout=30_000,
                          check_params_cb=lambda text: text.startswith("Added to")):
        qtbot.mouseClick(panel.dataset.add_button, Qt.LeftButton)


def _my_data_set(window, qtbot, tmp_path, data_dir) -> None:
    """Two recordings of "forty two" and a dropped image of another number, each added with its label."""
    from engine.data.folder import load_folder
    panel = window.retrieval_panel
    panel.dataset.path.setText(str(tmp_path / "mine"))
    for _ in range(2):
        _record_and_add(window, qtbot, "42")
    image = next(i for i in load_folder(data_dir).splits["test"] if i.label != 42)
    with qtbot.waitSignal(panel.results.shown, timeout=30_000):
        assert _drop_file(panel.drop_zone, image.image)
    _add(window, qtbot, str(image.label))
    assert len(load_folder(tmp_path / "mine").splits["train"] + load_folder(tmp_path / "mine").splits["val"]
               + load_folder(tmp_path / "mine").splits["test"]) == 3


def test_teach_fine_tunes_the_model_in_use_and_shows_my_items_before_and_after(
        ready_window, qtbot, tmp_path, data_dir, test_microphone):
    panel, teach = ready_window.retrieval_panel, ready_window.retrieval_panel.teach
    assert not teach.teach_button.isEnabled(), "no data set folder yet"
    _my_data_set(ready_window, qtbot, tmp_path, data_dir)
    before = panel.model_path
    teach.steps.setValue(3)
    assert teach.teach_button.isEnabled(), teach.teach_button.toolTip()
    qtbot.mouseClick(teach.teach_button, Qt.LeftButton)
    assert not teach.teach_button.isEnabled() and teach.stop_button.isEnabled()
    qtbot.waitUntil(lambda: teach.table.isVisible() or bool(ready_window.errors), timeout=180_000)
    assert not ready_window.errors, ready_window.errors
    assert panel.model_path != before and panel.model_path.endswith("checkpoint.pt")
    assert str(tmp_path / "runs") in panel.model_path, "the taught model lives in a run folder of its own"
    assert list(teach._steps.view()) == [1, 2, 3], "the live curve got every step"
    assert teach.learning == " what the model sees and hears (the rest stays as it was)", \
        "recordings and an image teach the parts that hear and see, and the box says so"
    assert teach.progress.value() == 3 and teach.progress.maximum() == 3
    assert teach.table.rowCount() == 3
    labels = sorted(teach.table.item(row, 1).text() for row in range(3))
    assert labels.count("42") == 2
    for row in range(3):
        for column in (2, 3):
            assert teach.table.item(row, column).text()[-1] in "✓✗"
    assert "% before" in teach.status.text() and "% after" in teach.status.text()
    assert teach.teach_button.isEnabled() and not teach.stop_button.isEnabled()
    # the taught model answers queries, and is what the studio opens next time
    with qtbot.waitSignal(panel.results.shown, timeout=30_000):
        panel.text.setText("forty two")
        panel.search_button.click()
    assert ready_window.settings.value("checkpoint/last") == panel.model_path


def test_stopping_mid_teach_keeps_the_model_in_use(ready_window, qtbot, tmp_path, data_dir, test_microphone):
    panel, teach = ready_window.retrieval_panel, ready_window.retrieval_panel.teach
    _my_data_set(ready_window, qtbot, tmp_path, data_dir)
    before = panel.model_path
    teach.steps.setValue(100_000)
    qtbot.mouseClick(teach.teach_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(teach._steps) >= 1 or bool(ready_window.errors), timeout=120_000)
    assert not ready_window.errors, ready_window.errors
    qtbot.mouseClick(teach.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Stopped at step" in teach.status.text(), timeout=60_000)
    assert "unchanged" in teach.status.text() and teach.teach_button.isEnabled()
    assert panel.model_path == before and not teach.table.isVisible()
    with qtbot.waitSignal(panel.results.shown, timeout=30_000) as blocker:
        panel.text.setText("forty two")
        panel.search_button.click()
    assert set(blocker.args[0].results) == {"image", "audio"}, "the previous model still answers"
