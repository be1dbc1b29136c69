"""The answers of the Retrieval panel: what was asked, how long the model took, and the top k of every
other modality as rows (thumbnail, caption or play button, label, score).

Rows are widgets (thumbnails, rich text): rebuilding them costs ~5-10 ms, so a stream of answers shows the
newest at most 10 times a second; a single answer is shown at once.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

MODALITY_TITLES = {"image": "Images", "text": "Captions", "audio": "Spoken clips"}
ROWS_INTERVAL_S = 0.1   # answers arriving faster than this (a stream of queries) are shown coalesced


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ResultRow(QFrame):
    play_requested = Signal(str)

    def __init__(self, rank: int, hit, play_reason: str | None, query_label=None):
        super().__init__()
        self.setObjectName("resultRow")
        self.hit = hit
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        rank_label = QLabel(f"{rank}.")
        rank_label.setFixedWidth(22)
        layout.addWidget(rank_label)
        if hit.modality == "image" and hit.path:
            thumb = QLabel()
            pixmap = QPixmap(hit.path)
            if not pixmap.isNull():
                thumb.setPixmap(pixmap.scaledToHeight(40, Qt.SmoothTransformation))
            thumb.setFixedWidth(90)
            layout.addWidget(thumb)
        if hit.modality == "audio":
            self.play_button = QPushButton("▶ Play")
            self.play_button.setEnabled(play_reason is None)
            self.play_button.setToolTip(play_reason or f"Play {hit.path}")
            self.play_button.clicked.connect(lambda: self.play_requested.emit(hit.path))
            layout.addWidget(self.play_button)
        text = hit.caption or (Path(hit.path).parent.name + "/" + Path(hit.path).name if hit.path else "")
        label = "" if hit.label is None else f"label {hit.label}"
        description = QLabel(f"<b>{_escape(text)}</b><br><span style='color:gray'>{label}</span>"
                             if hit.modality != "image" else f"<span>{label}</span>")
        description.setTextFormat(Qt.RichText)
        description.setToolTip(hit.path or hit.caption or "")
        layout.addWidget(description, 1)
        score = QLabel(f"{hit.score:.3f}")
        score.setObjectName("score")
        score.setToolTip("cosine similarity to the query")
        layout.addWidget(score)
        if query_label is not None and hit.label == query_label:
            self.setStyleSheet("#resultRow { background: rgba(60, 170, 80, 45); border-radius: 4px; }")


class ResultsView(QWidget):
    shown = Signal(object)              # the rows now show this QueryAnswer
    play_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.play_reason: str | None = None
        self.query_label = QLabel("Query: –")
        self.query_label.setObjectName("queryLabel")
        self.query_label.setWordWrap(True)
        self.latency_label = QLabel("")
        self.latency_label.setObjectName("latencyLabel")
        self.latency_label.setToolTip("Time the model took: preparing the input, embedding it, ranking the gallery")
        self.error_label = QLabel("")
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d03030; font-weight: bold;")
        self.area = QScrollArea()
        self.area.setWidgetResizable(True)
        self.rows_widget = QWidget()
        self.rows_layout = QHBoxLayout(self.rows_widget)
        self.area.setWidget(self.rows_widget)
        self.rows: dict[str, list[ResultRow]] = {}
        self._due = None
        self.shown_at = -1.0              # when the rows were last rebuilt (time.monotonic)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._show_due)
        header = QHBoxLayout()
        header.addWidget(self.query_label, 1)
        header.addWidget(self.latency_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.error_label)
        layout.addWidget(self.area, 1)

    def searching(self, modality: str, description: str) -> None:
        self.error_label.setText("")
        self.query_label.setText(f"Query ({modality}): {description} — searching…")

    def failed(self, message: str) -> None:
        self.show_error(message)
        self.query_label.setText(self.query_label.text().replace(" — searching…", " — failed"))

    def show_error(self, message: str) -> None:
        self.error_label.setText(f"⚠ {message}")

    def clear_error(self) -> None:
        self.error_label.setText("")

    def show_answer(self, answer, description: str) -> None:
        """A QueryAnswer: the labels at once, the rows now or (in a stream) a little later."""
        adapt = " · memory adapted" if answer.adapt else ""
        self.query_label.setText(f"Query ({answer.modality}): {description}{adapt}")
        self.latency_label.setText(f"{answer.latency_ms:.0f} ms")
        self._due = answer
        wait = self.shown_at + ROWS_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._show_due()
        elif not self._timer.isActive():
            self._timer.start(int(1000 * wait) + 1)

    def _show_due(self) -> None:
        answer, self._due = self._due, None
        if answer is None:
            return
        self.shown_at = time.monotonic()
        while self.rows_layout.count():
            item = self.rows_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.rows = {}
        for modality in ("image", "text", "audio"):
            hits = answer.results.get(modality)
            if hits is None:
                continue
            box = QGroupBox(MODALITY_TITLES[modality])
            box.setObjectName(f"results-{modality}")
            column = QVBoxLayout(box)
            top_label = hits[0].label if hits else None
            self.rows[modality] = []
            for rank, hit in enumerate(hits, start=1):
                row = ResultRow(rank, hit, self.play_reason, query_label=top_label)
                row.play_requested.connect(self.play_requested)
                column.addWidget(row)
                self.rows[modality].append(row)
            column.addStretch(1)
            self.rows_layout.addWidget(box, 1)
        self.shown.emit(answer)
