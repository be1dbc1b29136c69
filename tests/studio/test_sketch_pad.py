"""The sketch pad, drawn on with real mouse drags (QTest): ink where the mouse went, Undo, Clear, and
retrieval that runs as the number is drawn."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from engine.data.pen import RENDER_HEIGHT
from studio.panels.sketch_pad import QUERY_INTERVAL_MS, SketchInput

PAD_W, PAD_H = 240, 120
SCALE = RENDER_HEIGHT / PAD_H           # pad pixels -> rendered pixels


def drag(widget, points, steps: int = 8) -> None:
    """Press at the first point, move through the others (`steps` moves per segment), release: a stroke."""
    QTest.mousePress(widget, Qt.LeftButton, Qt.NoModifier, QPoint(*points[0]))
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for i in range(1, steps + 1):
            t = i / steps
            QTest.mouseMove(widget, QPoint(round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0))))
    QTest.mouseRelease(widget, Qt.LeftButton, Qt.NoModifier, QPoint(*points[-1]))


def ink_at(pixels: np.ndarray, x: float, y: float) -> bool:
    """Whether the rendered drawing is dark around pad point (x, y)."""
    row, col = round(y * SCALE), round(x * SCALE)
    return bool(pixels[max(0, row - 1): row + 2, max(0, col - 1): col + 2].min() < 128)


SEVEN = [(90, 20), (150, 20), (110, 100)]   # the bar, then the stem down to the left


@pytest.fixture
def sketch(qtbot):
    box = SketchInput()
    qtbot.addWidget(box)
    box.show()
    box.pad.setFixedSize(PAD_W, PAD_H)
    qtbot.waitExposed(box)
    return box


def test_a_dragged_seven_is_inked_where_the_mouse_went_and_nowhere_else(sketch):
    pad = sketch.pad
    assert pad.is_empty() and not sketch.undo_button.isEnabled()
    drag(pad, SEVEN)
    assert len(pad.strokes) == 1 and len(pad.strokes[0]) > 10
    pixels = pad.pixels()
    assert pixels.shape == (RENDER_HEIGHT, round(RENDER_HEIGHT * PAD_W / PAD_H)) and pixels.dtype == np.uint8
    for x, y in [(90, 20), (120, 20), (150, 20), (130, 60), (112, 96)]:
        assert ink_at(pixels, x, y), f"no ink at {(x, y)}"
    for x, y in [(20, 100), (220, 100), (40, 20), (200, 60)]:
        assert not ink_at(pixels, x, y), f"ink at {(x, y)}, away from the stroke"
    assert sketch.undo_button.isEnabled() and sketch.clear_button.isEnabled()


def test_what_the_model_reads_is_the_drawing_on_screen(sketch):
    """The pad shows strokes with Qt and hands the model the engine's rendering (the one training draws its
    made-up pad drawings with): the two cover the same pixels."""
    pad = sketch.pad
    drag(pad, SEVEN)
    drag(pad, [(40, 30), (40, 100)])
    shown = pad.grab().toImage().convertToFormat(QImage.Format_Grayscale8)
    rows = np.frombuffer(shown.constBits(), np.uint8).reshape(shown.height(), shown.bytesPerLine())
    on_screen = rows[2:-2, 2:shown.width() - 2] < 128                   # inside the pad's frame
    read = pad.pixels(height=PAD_H)[2:-2, 2:-2] < 128
    assert on_screen.shape == read.shape
    overlap = (on_screen & read).sum() / (on_screen | read).sum()
    assert overlap > 0.85, overlap


def test_a_finger_on_a_touch_screen_draws_too(sketch):
    """Touch reaches the pad as the mouse events Qt synthesises from it."""
    pad, finger = sketch.pad, QTest.createTouchDevice()
    QTest.touchEvent(pad, finger).press(0, QPoint(40, 60), pad).commit()   # points in the pad's coordinates
    for x in range(50, 210, 10):
        QTest.touchEvent(pad, finger).move(0, QPoint(x, 60), pad).commit()
    QTest.touchEvent(pad, finger).release(0, QPoint(200, 60), pad).commit()
    assert len(pad.strokes) == 1, pad.strokes
    pixels = pad.pixels()
    assert ink_at(pixels, 120, 60) and ink_at(pixels, 195, 60) and not ink_at(pixels, 120, 15)


def test_undo_removes_the_last_stroke_and_clear_empties_the_pad(sketch, qtbot):
    pad = sketch.pad
    drag(pad, [(60, 15), (60, 105)])            # a "1"
    drag(pad, [(100, 60), (200, 60)])           # a bar across
    both = pad.pixels()
    assert ink_at(both, 60, 60) and ink_at(both, 180, 60)
    qtbot.mouseClick(sketch.undo_button, Qt.LeftButton)
    one = pad.pixels()
    assert len(pad.strokes) == 1
    assert ink_at(one, 60, 60) and not ink_at(one, 180, 60), "Undo left the bar or took the 1"
    drag(pad, [(100, 60), (200, 60)])
    pad.setFocus()
    QTest.keyClick(pad, Qt.Key_Z, Qt.ControlModifier)   # Ctrl+Z undoes a stroke too
    assert len(pad.strokes) == 1 and not ink_at(pad.pixels(), 180, 60)
    qtbot.mouseClick(sketch.clear_button, Qt.LeftButton)
    assert pad.is_empty() and int(pad.pixels().min()) == 255, "Clear left ink"
    assert not sketch.undo_button.isEnabled() and not sketch.clear_button.isEnabled()


def test_the_drawing_is_sent_while_drawing_and_once_more_with_the_last_stroke(sketch, qtbot):
    pad, sent = sketch.pad, []
    pad.sketched.connect(sent.append)
    drag(pad, SEVEN[:2])
    qtbot.waitUntil(lambda: len(sent) == 1, timeout=5 * QUERY_INTERVAL_MS)
    assert ink_at(sent[0], 120, 20) and not ink_at(sent[0], 130, 60)
    drag(pad, SEVEN[1:])
    qtbot.waitUntil(lambda: len(sent) == 2, timeout=5 * QUERY_INTERVAL_MS)
    assert ink_at(sent[1], 130, 60), "the query after the last change must hold the newest stroke"
    qtbot.wait(3 * QUERY_INTERVAL_MS)
    assert len(sent) == 2, "nothing changed: no more queries"
    pad.clear()
    qtbot.wait(3 * QUERY_INTERVAL_MS)
    assert len(sent) == 2, "an empty pad is not a query"


# ---------------------------------------------------------------- in the Retrieval panel, with the demo model

@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    """A folder data set of one built-in test item for each of the numbers 0-9."""
    from engine.data.builtin import load_builtin_manifest
    root = tmp_path_factory.mktemp("digits")
    chosen = {}
    for item in load_builtin_manifest()["test"]:
        chosen.setdefault(item.label, item)
    with (root / "items.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "text", "audio", "label", "split"])
        for label in range(10):
            item = chosen[label]
            writer.writerow([item.image, item.text, item.audio, label, "test"])
    return root


def test_drawing_a_seven_in_the_retrieval_panel_finds_seven(make_window, qtbot, digits_dir):
    from engine.paths import DEFAULT_CHECKPOINT
    window = make_window(checkpoint=str(DEFAULT_CHECKPOINT), gallery_source=f"folder:{digits_dir}", gallery_size=10)
    panel = window.retrieval_panel
    qtbot.waitUntil(lambda: panel.gallery_ready or bool(window.errors), timeout=90_000)
    assert not window.errors, window.errors
    window.show_panel("retrieval")
    pad = panel.sketch.pad
    qtbot.waitExposed(pad)
    w, h = pad.width(), pad.height()
    shown = []
    panel.results.shown.connect(shown.append)
    drag(pad, [(int(x * w / PAD_W), int(y * h / PAD_H)) for x, y in SEVEN])
    # the last query (the whole 7) answered and its rows shown (they are coalesced to 10 a second)
    qtbot.waitUntil(lambda: bool(shown) and not pad.busy() and panel.results._due is None, timeout=30_000)
    assert all(answer.modality == "image" and answer.query == "image pixels" for answer in shown)
    captions = panel.results.rows["text"]
    assert captions[0].hit.label == 7, [row.hit.caption for row in captions]
    assert panel.results.rows["audio"][0].hit.label == 7
    assert "drawing" in panel.results.query_label.text()
    assert not window.errors


def test_drawing_before_a_model_is_loaded_says_so(make_window, qtbot):
    window = make_window(load_checkpoint=False)
    panel = window.retrieval_panel
    window.show_panel("retrieval")
    qtbot.waitExposed(panel.sketch.pad)
    drag(panel.sketch.pad, [(20, 20), (60, 60)])
    qtbot.waitUntil(lambda: "Load a model first" in panel.results.error_label.text(), timeout=5_000)


def test_a_drawing_added_to_my_data_set_is_saved_as_an_image_of_it(make_window, qtbot, tmp_path):
    from engine.data.folder import load_folder
    from PIL import Image
    window = make_window(load_checkpoint=False)
    panel = window.retrieval_panel
    window.show_panel("retrieval")
    pad = panel.sketch.pad
    qtbot.waitExposed(pad)
    w, h = pad.width(), pad.height()
    drag(pad, [(int(x * w / PAD_W), int(y * h / PAD_H)) for x, y in SEVEN])
    qtbot.waitUntil(lambda: panel.last_query is not None and "drawing" in panel.last_query, timeout=5_000)
    root = tmp_path / "mine"
    panel.dataset.path.setText(str(root))
    panel.dataset.label.setText("7")
    qtbot.mouseClick(panel.dataset.add_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: (root / "items.csv").exists() and len((root / "items.csv").read_text().splitlines()) == 2,
                    timeout=10_000)
    item = next(i for split in load_folder(root).splits.values() for i in split)
    assert item.label == 7 and item.image is not None
    saved = np.asarray(Image.open(item.image).convert("L"))
    assert saved.shape == pad.pixels().shape and np.array_equal(saved, panel.last_query["drawing"])
