"""The Retrieval panel with real widgets: drop, record, type; adapt and reset; bad input."""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


def _results(window):
    return window.retrieval_panel.result_rows


def test_typing_text_shows_the_top_k_images_and_clips(ready_window, qtbot):
    panel = ready_window.retrieval_panel
    with qtbot.waitSignal(ready_window.retrieval_panel.query_shown, timeout=30_000) as blocker:
        qtbot.keyClicks(panel.text, "forty two")
        qtbot.keyClick(panel.text, Qt.Key_Return)
    result = blocker.args[0]
    assert result["modality"] == "text"
    assert set(_results(ready_window)) == {"image", "audio"}
    assert len(_results(ready_window)["image"]) == panel.k.value()
    assert panel.latency_label.text().endswith("ms")
    audio_row = _results(ready_window)["audio"][0]
    assert audio_row.play_button.isEnabled(), audio_row.play_button.toolTip()


def _drop_file(widget, path) -> bool:
    """A real drag-enter + drop of a file URL, as a file manager sends it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = widget.rect().center()
    enter = QDragEnterEvent(centre, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the drop zone refused the drag"
    drop = QDropEvent(QPointF(centre), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def test_dropping_an_image_file_shows_captions_and_clips(ready_window, qtbot, data_dir):
    from engine.data.folder import load_folder
    image = load_folder(data_dir).splits["test"][0].image
    panel = ready_window.retrieval_panel
    with qtbot.waitSignal(ready_window.retrieval_panel.query_shown, timeout=30_000) as blocker:
        assert _drop_file(panel.drop_zone, image)
    assert blocker.args[0]["modality"] == "image"
    assert set(_results(ready_window)) == {"text", "audio"}
    assert not panel.drop_zone.pixmap().isNull(), "the dropped image is shown in the drop zone"
    assert panel.last_query == {"image": str(image)}


def test_a_bad_file_dropped_shows_a_message_and_the_app_goes_on(ready_window, qtbot, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    panel = ready_window.retrieval_panel
    with qtbot.waitSignal(ready_window.host.worker.error, timeout=30_000) as blocker:
        _drop_file(panel.drop_zone, broken)
    topic, message = blocker.args
    assert topic == "query" and "broken.png" in message and "\n" not in message
    assert "broken.png" in panel.error_label.text()
    ready_window.errors.clear()
    with qtbot.waitSignal(ready_window.retrieval_panel.query_shown, timeout=30_000):
        panel.text.setText("seven")
        panel.search_button.click()
    assert panel.error_label.text() == ""
    assert set(_results(ready_window)) == {"image", "audio"}


def test_recording_from_the_microphone_queries_with_what_it_heard(ready_window, qtbot, test_microphone):
    """PortAudio -> ALSA -> a capture device that plays a known clip (the `file` plugin)."""
    panel = ready_window.retrieval_panel
    assert panel.record_button.isEnabled(), panel.record_button.toolTip()
    with qtbot.waitSignal(ready_window.retrieval_panel.query_shown, timeout=30_000) as blocker:
        panel.setFocus()
        qtbot.keyClick(panel, Qt.Key_Space)     # Space records; the recording ends at its length limit
        assert panel.capture.recording or panel.last_query
    result = blocker.args[0]
    assert result["modality"] == "audio" and result["query"] == "recording"
    assert set(_results(ready_window)) == {"image", "text"}
    wave, rate = panel.last_query["audio"]
    assert rate == 16000 and len(wave) == panel.capture.max_frames
    expected = test_microphone[: len(wave)].astype(np.float32) / 32768.0
    np.testing.assert_allclose(wave, expected, atol=1e-6)   # exactly the clip the device played
    assert not panel.record_button.isChecked()
    assert panel.waveform_curve.getData()[0] is not None


def test_a_stream_of_answers_shows_the_newest_without_rebuilding_rows_for_each(ready_window, qtbot):
    from studio.panels.retrieval_panel import ROWS_INTERVAL_S
    panel, worker = ready_window.retrieval_panel, ready_window.host.worker
    shown, answered = [], []
    panel.query_shown.connect(lambda result: shown.append((time.monotonic(), result)))
    worker.query_done.connect(answered.append)
    texts = ["forty two", "seven", "ninety nine", "thirteen", "sixty", "one", "twenty five", "eighty eight"] * 2
    for text in texts:                       # queued back to back, as a stream
        ready_window.host.query("text", text, k=3)
    qtbot.waitUntil(lambda: len(answered) == len(texts), timeout=30_000)
    qtbot.waitUntil(lambda: bool(shown) and shown[-1][1] is answered[-1], timeout=5_000)
    assert shown[-1][1]["query"] == "eighty eight"
    assert [row.hit for row in _results(ready_window)["image"]] == answered[-1]["results"]["image"]
    # the rows were rebuilt at most once every ROWS_INTERVAL_S, however fast the answers came
    times = [t for t, _ in shown]
    assert all(b - a >= ROWS_INTERVAL_S - 0.015 for a, b in zip(times, times[1:])), times


def test_no_microphone_disables_record_and_says_why(ready_window, monkeypatch):
    from studio import audio_capture
    monkeypatch.setattr(audio_capture, "input_devices",
                        lambda: ([], "No microphone (audio input device) found on this machine"))
    panel = ready_window.retrieval_panel
    panel.check_audio()
    assert not panel.record_button.isEnabled()
    assert "No microphone" in panel.record_button.toolTip()
    panel.toggle_recording()                      # Space does nothing either
    assert not panel.capture.recording


def test_adapting_moves_the_memory_view_and_reset_restores_it(ready_window, qtbot):
    panel, memory = ready_window.retrieval_panel, ready_window.memory_panel
    ready_window.show_panel("memory")       # watched: the view draws while queries arrive
    qtbot.waitUntil(lambda: memory.shown is not None, timeout=10_000)
    trained = memory.shown["slots"].copy()
    assert memory.total_change() == 0.0

    panel.adapt.setChecked(True)
    for text in ("forty two", "seven", "ninety nine"):
        with qtbot.waitSignal(ready_window.host.worker.memory, timeout=30_000):
            panel.text.setText(text)
            panel.search_button.click()
    # the view redraws at most 30 times a second: wait for the newest frame to be drawn
    qtbot.waitUntil(lambda: memory.shown is not None and memory.shown["write_count"] >= 3, timeout=5_000)
    assert memory.total_change() > 0.0
    assert len(memory.shown["written"]) > 0, "the slots the last query wrote are highlighted"
    assert not np.array_equal(memory.shown["slots"], trained)
    assert memory.replay.maximum() >= 3

    with qtbot.waitSignal(ready_window.host.worker.memory, timeout=30_000):
        panel.reset_button.click()
    qtbot.waitUntil(lambda: memory.total_change() == 0.0, timeout=5_000)
    assert memory.total_change() == 0.0
    np.testing.assert_array_equal(memory.shown["slots"], trained)

    memory.replay.setValue(memory.replay.maximum() - 1)     # replay: the frame before the reset
    assert not memory.live.isChecked()
    assert memory.total_change() > 0.0


def test_the_gallery_picker_embeds_another_gallery_and_a_bad_one_keeps_the_old(ready_window, qtbot, tmp_path):
    panel, worker = ready_window.retrieval_panel, ready_window.host.worker
    picker = panel.gallery_picker
    picker.set_choice("builtin", "val", 30)
    with qtbot.waitSignal(worker.gallery_ready, timeout=60_000) as blocker:
        qtbot.mouseClick(picker.use_button, Qt.LeftButton)
    info = blocker.args[0]
    assert (info["source"], info["split"]) == ("builtin", "val")
    assert info["sizes"] == {"image": 30, "text": 30, "audio": 30}
    assert "builtin/val" in panel.model_label.text() and panel.search_button.isEnabled()
    assert int(ready_window.settings.value("gallery/size")) == 30   # remembered for the next launch

    picker.set_choice(f"folder:{tmp_path / 'no such folder'}", "all", 10)
    with qtbot.waitSignal(worker.task_finished, timeout=30_000,
                          check_params_cb=lambda topic, outcome: topic == "gallery") as blocker:
        qtbot.mouseClick(picker.use_button, Qt.LeftButton)
    assert blocker.args == ["gallery", "failed"]
    assert any(topic == "gallery" and "no such folder" in message for topic, message in ready_window.errors)
    ready_window.errors.clear()
    qtbot.waitUntil(lambda: "previous gallery is still searched" in panel.model_label.text(), timeout=5_000)
    assert panel.gallery_ready and "no such folder" in panel.error_label.text()
    with qtbot.waitSignal(worker.query_done, timeout=30_000) as blocker:
        panel.text.setText("forty two")
        panel.search_button.click()
    assert len(blocker.args[0]["results"]["image"]) == panel.k.value()   # still the 30-item gallery


def test_a_clip_too_short_to_hear_is_a_clear_message_in_the_panel(ready_window, qtbot, tmp_path):
    """Finding 3 in the studio: a 300-sample clip reached torch.stft and came back as a RuntimeError."""
    import soundfile as sf
    clip = tmp_path / "click.wav"
    sf.write(clip, 0.5 * np.sin(np.arange(300) / 5.0), 44100, subtype="PCM_32")
    panel = ready_window.retrieval_panel
    with qtbot.waitSignal(ready_window.host.worker.error, timeout=30_000) as blocker:
        _drop_file(panel.drop_zone, clip)
    assert blocker.args == ["query", f"{clip}: audio too short (6.8 ms; at least 50 ms)"]
    assert "too short" in panel.error_label.text()
    ready_window.errors.clear()
