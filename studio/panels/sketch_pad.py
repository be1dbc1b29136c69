"""The sketch pad of the Retrieval panel: draw a number with the mouse, a pen or a finger, and retrieval runs
as you draw.

Strokes are kept as point lists in the pad's own unit square, so the drawing survives a resize and renders
at any size. `pixels()` renders them to a grey array, dark ink on white paper as the pad shows them, with
the engine's pen renderer (`engine.data.pen`): the one training renders its made-up pad drawings with. The
engine reads it through the same image preprocessing as a dropped file (paper flattened, ink cropped and
letter-boxed). Pens and touch screens reach the pad as the mouse events Qt synthesises from their events.

Queries are throttled: while the drawing changes, `sketched` is emitted at most every QUERY_INTERVAL_MS,
and once more after the last change, always with the newest strokes. `hold_until(task)` keeps the next
one back until the query in flight has finished, so a slow model is never asked a backlog of old drawings.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPainterPath, QPen, QShortcut
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from engine.data import pen

QUERY_INTERVAL_MS = 200     # at most 5 queries a second while drawing: the demo model answers in ~10-30 ms
PAPER, INK = QColor(pen.PAPER, pen.PAPER, pen.PAPER), QColor(pen.INK, pen.INK, pen.INK)


def draw_strokes(painter: QPainter, strokes, width: float, height: float, ink: QColor = INK) -> None:
    """Each stroke as a round-capped polyline scaled to width x height (a single point: a dot): what the pad
    shows on screen, drawn as `engine.data.pen.render_strokes` draws what the model reads."""
    painter.setPen(QPen(ink, max(1.0, pen.PEN_SHARE * height), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
    painter.setRenderHint(QPainter.Antialiasing)
    for stroke in strokes:
        points = [QPointF(x * width, y * height) for x, y in stroke]
        if len(points) == 1:
            painter.drawPoint(points[0])
            continue
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        painter.drawPath(path)


def save_png(pixels: np.ndarray, path: Path) -> Path:
    """(H, W) uint8 grey pixels as a PNG file (for a data set, which keeps files)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.shape[1], QImage.Format_Grayscale8).save(str(path))
    return path


class SketchPad(QWidget):
    changed = Signal()                  # a stroke drawn, undone or cleared
    sketched = Signal(object)           # the drawing to query with: (H, W) uint8 grey, ink dark on white

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sketchPad")
        self.setMinimumSize(QSize(160, 80))
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setCursor(Qt.CrossCursor)
        self.setFocusPolicy(Qt.StrongFocus)     # Ctrl+Z undoes a stroke
        self.setToolTip("Draw a number: retrieval runs as you draw (Ctrl+Z undoes a stroke)")
        self.strokes: list[list[tuple[float, float]]] = []
        self._drawing = False
        self._in_flight = None          # the query task of the last drawing, until it finished
        self._again = False             # the drawing changed while that query ran
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(QUERY_INTERVAL_MS)
        self.timer.timeout.connect(self._send)

    def sizeHint(self) -> QSize:
        return QSize(240, 120)          # the model's images are twice as wide as high: room for two digits

    # ------------------------------------------------------------------ the drawing
    def is_empty(self) -> bool:
        return not self.strokes

    def undo(self) -> None:
        if self.strokes:
            self.strokes.pop()
            self._drawing = False
            self._changed()

    def clear(self) -> None:
        if self.strokes:
            self.strokes.clear()
            self._drawing = False
            self._changed()

    def pixels(self, height: int = pen.RENDER_HEIGHT) -> np.ndarray:
        """The strokes rendered as (height, width) uint8 grey at the pad's aspect: dark ink, white paper."""
        width = max(1, round(height * self.width() / max(1, self.height())))
        return pen.render_strokes(self.strokes, height, width)

    def _unit(self, event) -> tuple[float, float]:
        p = event.position()
        return (min(max(p.x() / max(1, self.width()), 0.0), 1.0), min(max(p.y() / max(1, self.height()), 0.0), 1.0))

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.LeftButton:
            return super().mousePressEvent(event)
        self._drawing = True
        self.strokes.append([self._unit(event)])
        self._changed()

    def mouseMoveEvent(self, event) -> None:
        if not self._drawing:
            return super().mouseMoveEvent(event)
        self.strokes[-1].append(self._unit(event))
        self._changed()

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.LeftButton and self._drawing:
            self._drawing = False
            self._changed()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), PAPER)
        if self.strokes:
            draw_strokes(painter, self.strokes, self.width(), self.height())
        else:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(QRectF(self.rect()), Qt.AlignCenter, "Draw a number here")
        painter.setPen(QColor(180, 180, 180))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()

    # ------------------------------------------------------------------ queries
    def _changed(self) -> None:
        self.update()
        self.changed.emit()
        if self.strokes and not self.timer.isActive():
            self.timer.start()

    def _send(self) -> None:
        if self.is_empty():
            return
        if self._in_flight is not None:     # one query at a time; the next one asks with the newest strokes
            self._again = True
            return
        self.sketched.emit(self.pixels())

    def busy(self) -> bool:
        """A query of this drawing is due or in flight."""
        return self.timer.isActive() or self._in_flight is not None

    def hold_until(self, task) -> None:
        """The next query waits until `task` (the query of this drawing) has finished."""
        self._in_flight = task
        task.finished.connect(self._released)

    def _released(self) -> None:
        self._in_flight = None
        if self._again:
            self._again = False
            self._send()


class SketchInput(QGroupBox):
    """The pad with its Undo and Clear buttons."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Draw", parent)
        self.pad = SketchPad()
        self.undo_button = QPushButton("Undo stroke")
        self.undo_button.setObjectName("undoStroke")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearSketch")
        self.undo_button.clicked.connect(self.pad.undo)
        self.clear_button.clicked.connect(self.pad.clear)
        undo = QShortcut(QKeySequence.Undo, self.pad, context=Qt.WidgetShortcut)
        undo.activated.connect(self.pad.undo)
        self.pad.changed.connect(self._update_buttons)
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pad, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    def _update_buttons(self) -> None:
        for button in (self.undo_button, self.clear_button):
            button.setEnabled(not self.pad.is_empty())
