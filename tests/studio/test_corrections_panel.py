"""Corrections by mouse, with real widgets: mark a result row right (✓) or type the right answer, see it
learnt and listed in the Memory panel, forget it, reset, and find it again after a relaunch."""
from __future__ import annotations

from PySide6.QtCore import Qt


def ask(window, qtbot, text):
    panel = window.retrieval_panel
    with qtbot.waitSignal(panel.results.shown, timeout=30_000) as blocker:
        panel.text.setText(text)
        qtbot.mouseClick(panel.search_button, Qt.LeftButton)
    return blocker.args[0]


def learnt(window, qtbot, click):
    with qtbot.waitSignal(window.host.retrieval.memory_changed, timeout=60_000):
        click()
    qtbot.waitUntil(lambda: window.retrieval_panel.results.learnt_label.text().startswith("✓ Learnt"),
                    timeout=10_000)


def test_a_row_marked_right_is_learnt_listed_forgotten_and_reset(ready_window, qtbot):
    window, memory = ready_window, ready_window.memory_panel
    window.show_panel("memory")
    answer = ask(window, qtbot, "forty two")
    rows = window.retrieval_panel.results.rows["image"]
    wrong = next(row for row in rows[1:] if row.hit.label != rows[0].hit.label)
    right = wrong.hit.label       # (rows are filled again with each answer)
    learnt(window, qtbot, lambda: qtbot.mouseClick(wrong.right_button, Qt.LeftButton))
    assert f"is {right}" in window.retrieval_panel.results.learnt_label.text()

    # the Memory panel lists it and shows which parts of the text encoder it moved
    qtbot.waitUntil(lambda: memory.corrections.rows.count() == 1, timeout=5_000)
    assert "forty two" in memory.corrections.rows.item(0).text()
    assert any(label.startswith("text ") for label in memory.weights_shown()), memory.weights_shown()
    # the same question is now answered as taught
    again = ask(window, qtbot, "forty two")
    assert again.results["image"][0].label == right != answer.results["image"][0].label

    memory.corrections.rows.setCurrentRow(0)
    with qtbot.waitSignal(window.host.retrieval.memory_changed, timeout=60_000):
        qtbot.mouseClick(memory.corrections.forget_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: memory.corrections.rows.count() == 0, timeout=5_000)
    assert ask(window, qtbot, "forty two").results["image"][0].label == answer.results["image"][0].label

    again_rows = window.retrieval_panel.results.rows["image"]
    learnt(window, qtbot, lambda: qtbot.mouseClick(again_rows[1].right_button, Qt.LeftButton))
    with qtbot.waitSignal(window.host.retrieval.memory_changed, timeout=30_000):
        qtbot.mouseClick(memory.reset_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: memory.corrections.rows.count() == 0, timeout=5_000)
    assert not window.errors, window.errors


def test_a_typed_answer_is_learnt_and_kept_for_the_next_launch(make_window, qtbot):
    window = make_window()
    qtbot.waitUntil(lambda: window.retrieval_panel.gallery_ready or bool(window.errors), timeout=90_000)
    results = window.retrieval_panel.results
    image = ask(window, qtbot, "seven")
    assert image.results
    labels = {row.hit.label for row in results.rows["image"]}
    gallery = window.host.retrieval.gallery[0]
    other = next(str(item.label) for item in gallery if item.label not in labels)
    results.right_label.setText(other)
    learnt(window, qtbot, lambda: qtbot.keyClick(results.right_label, Qt.Key_Return))
    assert ask(window, qtbot, "seven").results["image"][0].label == int(other)
    window.close()

    messages = []
    later = make_window()
    later.retrieval_panel.message.connect(messages.append)
    qtbot.waitUntil(lambda: later.retrieval_panel.gallery_ready or bool(later.errors), timeout=90_000)
    assert any("1 corrections carried on" in m for m in messages), messages
    assert ask(later, qtbot, "seven").results["image"][0].label == int(other)
    later.show_panel("memory")
    qtbot.waitUntil(lambda: later.memory_panel.corrections.rows.count() == 1, timeout=5_000)
    assert not later.errors, later.errors


def test_image_corrections_are_consolidated_while_idle_and_kept(ready_window, qtbot):
    from engine.corrections import CONSOLIDATION_STEPS, load_memory_file
    session = ready_window.host.retrieval
    ready_window.show_panel("memory")
    first, other = [item for item in session.gallery[0] if item.image is not None and item.label is not None][:2]
    with qtbot.waitSignal(session.query("image", str(first.image), 1).result, timeout=30_000) as asked:
        pass
    with qtbot.waitSignal(session.correct(asked.args[0].query_id, "text", other.label).result,
                          timeout=30_000) as corrected:
        pass
    assert corrected.args[0].consolidation_due == CONSOLIDATION_STEPS
    # nothing asked for a moment: the steps run one by one on the engine thread, then the file is written
    qtbot.waitUntil(lambda: session.retriever.corrections.consolidation_due() == 0, timeout=30_000)
    qtbot.waitUntil(lambda: load_memory_file(session.corrections_file).get("consolidated") == CONSOLIDATION_STEPS,
                    timeout=10_000)
    assert not session.idle.isActive() and not ready_window.errors, ready_window.errors
    summary = ready_window.memory_panel.corrections.summary   # the Memory panel says so
    qtbot.waitUntil(lambda: f"Consolidated while idle: {CONSOLIDATION_STEPS} replay steps" in summary.text(),
                    timeout=10_000)
