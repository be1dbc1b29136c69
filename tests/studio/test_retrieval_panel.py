"""The Retrieval panel with real widgets: drop, record, type; adapt and reset; bad input."""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


def _results(window):
    return window.retrieval_panel.results.rows


def test_typing_text_shows_the_top_k_images_and_clips(ready_window, qtbot):
    panel = ready_window.retrieval_panel
    with qtbot.waitSignal(ready_window.retrieval_panel.results.shown, timeout=30_000) as blocker:
        qtbot.keyClicks(panel.text, "forty two")
        qtbot.keyClick(panel.text, Qt.Key_Return)
    result = blocker.args[0]
    assert result.modality == "text"
    assert set(_results(ready_window)) == {"image", "audio"}
    assert len(_results(ready_window)["image"]) == panel.k.value()
    assert panel.results.latency_label.text().endswith("ms")
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
    with qtbot.waitSignal(ready_window.retrieval_panel.results.shown, timeout=30_000) as blocker:
        assert _drop_file(panel.drop_zone, image)
    assert blocker.args[0].modality == "image"
    assert set(_results(ready_window)) == {"text", "audio"}
    assert not panel.drop_zone.pixmap().isNull(), "the dropped image is shown in the drop zone"
    assert panel.last_query == {"image": str(image)}


def test_a_bad_file_dropped_shows_a_message_and_the_app_goes_on(ready_window, qtbot, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    panel = ready_window.retrieval_panel
    with qtbot.waitSignal(ready_window.host.failed, timeout=30_000) as blocker:
        _drop_file(panel.drop_zone, broken)
    title, message = blocker.args
    assert title == "query" and "broken.png" in message and "\n" not in message
    qtbot.waitUntil(lambda: "broken.png" in panel.results.error_label.text(), timeout=5_000)
    assert panel.results.query_label.text().endswith("— failed")
    ready_window.errors.clear()
    with qtbot.waitSignal(ready_window.retrieval_panel.results.shown, timeout=30_000):
        panel.text.setText("seven")
        panel.search_button.click()
    assert panel.results.error_label.text() == ""
    assert set(_results(ready_window)) == {"image", "audio"}


def test_recording_from_the_microphone_queries_with_what_it_heard(ready_window, qtbot, test_microphone):
    """PortAudio -> ALSA -> a capture device that plays a known clip (the `file` plugin)."""
    panel, speech = ready_window.retrieval_panel, ready_window.retrieval_panel.speech
    assert speech.record_button.isEnabled(), speech.record_button.toolTip()
    with qtbot.waitSignal(ready_window.retrieval_panel.results.shown, timeout=30_000) as blocker:
        panel.setFocus()
        qtbot.keyClick(panel, Qt.Key_Space)     # Space records; the recording ends at its length limit
        assert speech.capture.recording or panel.last_query
    result = blocker.args[0]
    assert result.modality == "audio" and result.query == "recording"
    assert set(_results(ready_window)) == {"image", "text"}
    wave, rate = panel.last_query["audio"]
    assert rate == 16000 and len(wave) == speech.capture.max_frames
    expected = test_microphone[: len(wave)].astype(np.float32) / 32768.0
    np.testing.assert_allclose(wave, expected, atol=1e-6)   # exactly the clip the device played
    assert not speech.record_button.isChecked()
    assert speech.waveform_curve.getData()[0] is not None


def test_a_stream_of_answers_shows_the_newest_without_rebuilding_rows_for_each(ready_window, qtbot):
    from studio.panels.results_view import ROWS_INTERVAL_S
    panel = ready_window.retrieval_panel
    shown = []
    first_rows = []
    panel.results.shown.connect(lambda result: shown.append((panel.results.shown_at, result)))
    panel.results.shown.connect(lambda _: first_rows or first_rows.extend(_results(ready_window)["image"]))
    texts = ["forty two", "seven", "ninety nine", "thirteen", "sixty", "one", "twenty five", "eighty eight"] * 2
    for text in texts:                       # queued back to back, as a stream
        panel.text.setText(text)
        panel.query_text()
    qtbot.waitUntil(lambda: len(shown) >= 1 and shown[-1][1].query == "eighty eight", timeout=30_000)
    qtbot.wait(3 * int(1000 * ROWS_INTERVAL_S))
    assert shown[-1][1].query == "eighty eight", "the newest answer is the one left on screen"
    assert [row.hit for row in _results(ready_window)["image"]] == list(shown[-1][1].results["image"])
    # the rows are the same widgets filled again, and they say what the newest answer found
    assert _results(ready_window)["image"] == first_rows
    for row, hit in zip(_results(ready_window)["image"], shown[-1][1].results["image"]):
        assert f"label {hit.label}" in row.description.text() and row.score.text() == f"{hit.score:.3f}"
    assert len(shown) < len(texts), "a stream of answers is shown coalesced"
    # the rows were rebuilt at most once every ROWS_INTERVAL_S, however fast the answers came
    times = [t for t, _ in shown]
    assert all(b - a >= ROWS_INTERVAL_S - 0.015 for a, b in zip(times, times[1:])), times


def test_an_answer_shown_at_once_cancels_the_wait_of_an_earlier_one(qtbot, monkeypatch):
    """Answers A, B (waits), C (due, shown at once), D: D must wait a whole interval after C, not be shown
    when B's timer ends (a race the stream test above once caught: two rebuilds 2 ms apart)."""
    from engine.events import Hit, QueryAnswer
    from studio.panels import results_view
    view = results_view.ResultsView()
    qtbot.addWidget(view)
    clock = [100.0]
    monkeypatch.setattr(results_view.time, "monotonic", lambda: clock[0])
    shown = []
    view.shown.connect(lambda answer: shown.append(answer.query))

    def answer(query):
        return QueryAnswer(query, "text", {"image": (Hit("image", 0.5, 1, None, None),)}, 1.0)

    view.show_answer(answer("A"), "A")
    clock[0] += results_view.ROWS_INTERVAL_S - 0.001
    view.show_answer(answer("B"), "B")           # 1 ms before its turn: a timer of about 2 ms
    clock[0] += 1.0
    view.show_answer(answer("C"), "C")           # long due: shown at once, and B with it replaced
    view.show_answer(answer("D"), "D")
    assert shown == ["A", "C"]
    assert view._timer.remainingTime() > 1000 * results_view.ROWS_INTERVAL_S / 2, "D waits a whole interval"
    qtbot.waitUntil(lambda: shown == ["A", "C", "D"], timeout=5_000)


def test_no_microphone_disables_record_and_says_why(ready_window, monkeypatch):
    from studio import audio_capture
    monkeypatch.setattr(audio_capture, "input_devices",
                        lambda: ([], "No microphone (audio input device) found on this machine"))
    panel = ready_window.retrieval_panel
    panel.check_audio()
    assert not panel.speech.record_button.isEnabled()
    assert "No microphone" in panel.speech.record_button.toolTip()
    panel.speech.toggle_recording()               # Space does nothing either
    assert not panel.speech.capture.recording


def test_adapting_moves_the_memory_view_and_reset_restores_it(ready_window, qtbot):
    panel, memory = ready_window.retrieval_panel, ready_window.memory_panel
    ready_window.show_panel("memory")       # watched: the view draws while queries arrive
    qtbot.waitUntil(lambda: memory.shown is not None, timeout=10_000)
    trained = memory.shown.slots.copy()
    assert memory.total_change() == 0.0

    panel.adapt.setChecked(True)
    for text in ("forty two", "seven", "ninety nine"):
        with qtbot.waitSignal(ready_window.host.retrieval.memory_changed, timeout=30_000):
            panel.text.setText(text)
            panel.search_button.click()
    # the view redraws at most 30 times a second: wait for the newest frame to be drawn
    qtbot.waitUntil(lambda: memory.shown is not None and memory.shown.write_count >= 3, timeout=5_000)
    assert memory.total_change() > 0.0
    assert len(memory.shown.written) > 0, "the slots the last query wrote are highlighted"
    assert not np.array_equal(memory.shown.slots, trained)
    assert memory.replay.maximum() >= 3

    with qtbot.waitSignal(ready_window.host.retrieval.memory_changed, timeout=30_000):
        panel.reset_button.click()
    qtbot.waitUntil(lambda: memory.total_change() == 0.0, timeout=5_000)
    assert memory.total_change() == 0.0
    np.testing.assert_array_equal(memory.shown.slots, trained)

    memory.replay.setValue(memory.replay.maximum() - 1)     # replay: the frame before the reset
    assert not memory.live.isChecked()
    assert memory.total_change() > 0.0


def test_choosing_learners_shows_the_projections_and_levels_they_moved(ready_window, qtbot):
    """HOPE's projections and the fast CMS level chosen from the Learners menu: adaptive text queries move
    them, the Memory panel draws how far per block, and Reset brings every bar back to zero."""
    panel, memory = ready_window.retrieval_panel, ready_window.memory_panel
    ready_window.show_panel("memory")
    actions = panel.options.learner_actions
    with qtbot.waitSignal(ready_window.host.retrieval.memory_changed, timeout=30_000):
        actions["hope"].setChecked(True)
    actions["cms_fast"].setChecked(True)
    actions["memory_delta"].setChecked(True)
    assert not actions["memory_gated"].isChecked(), "one write rule for the slots at a time"
    assert panel.options.chosen_learners() == ("memory_delta", "hope", "cms_fast", "domain")

    panel.adapt.setChecked(True)
    for text in ("forty two", "seven"):
        with qtbot.waitSignal(panel.results.shown, timeout=30_000):
            panel.text.setText(text)
            panel.search_button.click()
    qtbot.waitUntil(lambda: memory.shown is not None and memory.shown.write_count >= 2, timeout=10_000)
    moved = memory.weights_shown()
    projections = {label: value for label, value in moved.items() if label.startswith("text ")}
    assert projections and max(projections.values()) > 0, moved
    assert all(value == 0 for label, value in moved.items() if label.startswith(("image ", "audio "))), moved

    with qtbot.waitSignal(ready_window.host.retrieval.memory_changed, timeout=30_000):
        panel.reset_button.click()
    qtbot.waitUntil(lambda: not memory.weights_shown(), timeout=5_000)
    assert memory.total_change() == 0.0


def test_the_gallery_picker_embeds_another_gallery_and_a_bad_one_keeps_the_old(ready_window, qtbot, tmp_path):
    panel = ready_window.retrieval_panel
    picker = panel.gallery_picker
    picker.set_choice("builtin", "val", 30)
    qtbot.mouseClick(picker.use_button, Qt.LeftButton)
    with qtbot.waitSignal(panel.gallery_task.result, timeout=60_000) as blocker:
        pass
    ready = blocker.args[0]
    assert (ready.source, ready.split) == ("builtin", "val")
    assert ready.sizes == {"image": 30, "text": 30, "audio": 30}
    assert "builtin/val" in panel.model_label.text() and panel.search_button.isEnabled()
    assert int(ready_window.settings.value("gallery/size")) == 30   # remembered for the next launch

    picker.set_choice(f"folder:{tmp_path / 'no such folder'}", "all", 10)
    qtbot.mouseClick(picker.use_button, Qt.LeftButton)
    with qtbot.waitSignal(panel.gallery_task.error, timeout=30_000):
        pass
    assert any(title == "gallery" and "no such folder" in message for title, message in ready_window.errors)
    ready_window.errors.clear()
    qtbot.waitUntil(lambda: "previous gallery is still searched" in panel.model_label.text(), timeout=5_000)
    assert panel.gallery_ready and "no such folder" in panel.results.error_label.text()
    with qtbot.waitSignal(panel.results.shown, timeout=30_000) as blocker:
        panel.text.setText("forty two")
        panel.search_button.click()
    assert len(blocker.args[0].results["image"]) == panel.k.value()   # still the 30-item gallery


def test_cancelling_a_gallery_keeps_the_old_one(ready_window, qtbot):
    panel = ready_window.retrieval_panel
    gate = __import__("threading").Event()
    ready_window.host.submit("hold", lambda task: gate.wait(30))     # the engine is busy: Cancel lands first
    panel.gallery_picker.set_choice("builtin", "test", 300)
    qtbot.mouseClick(panel.gallery_picker.use_button, Qt.LeftButton)
    task = panel.gallery_task
    assert not panel.search_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    gate.set()
    with qtbot.waitSignal(task.cancelled, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: "new gallery cancelled" in panel.model_label.text(), timeout=5_000)
    assert panel.gallery_ready and panel.search_button.isEnabled() and not ready_window.errors


def test_a_clip_too_short_to_hear_is_a_clear_message_in_the_panel(ready_window, qtbot, tmp_path):
    """Finding 3 in the studio: a 300-sample clip reached torch.stft and came back as a RuntimeError."""
    import soundfile as sf
    clip = tmp_path / "click.wav"
    sf.write(clip, 0.5 * np.sin(np.arange(300) / 5.0), 44100, subtype="PCM_32")
    panel = ready_window.retrieval_panel
    _drop_file(panel.drop_zone, clip)
    qtbot.waitUntil(lambda: "too short" in panel.results.error_label.text(), timeout=30_000)
    assert panel.results.error_label.text() == f"⚠ {clip}: audio too short (6.8 ms; at least 50 ms)"
    ready_window.errors.clear()


def test_with_adapt_memory_a_heard_utterance_adapts_once_when_it_ended_not_while_tentative(ready_window, qtbot):
    from dataclasses import replace

    from engine.bench.spoken_stream import spoken_stream
    from engine.data.utterances import CONFIRMED, TENTATIVE, VAD_RATE, Utterance
    panel = ready_window.retrieval_panel
    panel.adapt.setChecked(True)
    stream = spoken_stream((42,), lead_s=0.1, tail_s=0.1, seed=1)
    tentative = Utterance(stream.samples, 0.0, len(stream.samples) / VAD_RATE, time.perf_counter(), TENTATIVE)
    answers = []
    panel.heard_answered.connect(lambda utterance, answer: answers.append((utterance.kind, answer.adapt)))
    panel.speech.heard.emit(tentative)
    qtbot.waitUntil(lambda: len(answers) == 1, timeout=30_000)
    panel.speech.heard.emit(replace(tentative, kind=CONFIRMED))
    qtbot.waitUntil(lambda: len(answers) == 2, timeout=30_000)
    assert answers == [(TENTATIVE, False), (CONFIRMED, True)]
    panel.adapt.setChecked(False)             # without adapting, a confirmed utterance is not asked again
    panel.speech.heard.emit(tentative)
    panel.speech.heard.emit(replace(tentative, kind=CONFIRMED))
    qtbot.waitUntil(lambda: len(answers) == 3, timeout=30_000)
    qtbot.wait(300)
    assert answers[2:] == [(TENTATIVE, False)]
