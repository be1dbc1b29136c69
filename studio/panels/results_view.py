"""The answers of the Retrieval panel: what was asked, how long the model took, and the top k of every
other modality as rows (thumbnail, caption or play button, label, score). Each row's ✓ says "this is the
right one", and when none is, the right answer can be typed: either is a correction the model learns at
once (`correction_requested`, `label_given`).

Rows are widgets (thumbnails, rich text), made once and filled again with each answer (building them
afresh, thumbnails read from disk, cost ~8 ms an answer); a stream of answers shows the newest at most 10
times a second; a single answer is shown at once.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QFrame, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea,
                               QToolButton, QVBoxLayout, QWidget)

from engine.vocabulary import ANSWER_GALLERY
from studio.panels.corrections_list import shown

MODALITY_TITLES = {"image": "Images", "text": "Captions", "audio": "Spoken clips"}
ROWS_INTERVAL_S = 0.1   # answers arriving faster than this (a stream of queries) are shown coalesced
THUMBNAILS_KEPT = 512   # scaled image thumbnails kept (a gallery's images are asked again and again)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ResultRow(QFrame):
    """One hit: made once for its modality, then shown again with each new answer (`show_hit`)."""
    play_requested = Signal(str)
    right_one = Signal(object)          # the Hit the user marked as the right answer

    def __init__(self, modality: str, thumbnails: dict[tuple, QPixmap]):
        super().__init__()
        self.setObjectName("resultRow")
        self.modality, self.thumbnails = modality, thumbnails
        self.hit = None
        self._matches: bool | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.rank_label = QLabel()
        self.rank_label.setFixedWidth(22)
        layout.addWidget(self.rank_label)
        if modality == "image":
            self.thumb = QLabel()
            self.thumb.setFixedWidth(90)
            layout.addWidget(self.thumb)
        if modality == "audio":
            self.play_button = QPushButton("▶ Play")
            self.play_button.clicked.connect(lambda: self.hit and self.play_requested.emit(self.hit.path))
            layout.addWidget(self.play_button)
        self.description = QLabel()
        self.description.setTextFormat(Qt.RichText)
        layout.addWidget(self.description, 1)
        self.score = QLabel()
        self.score.setObjectName("score")
        self.score.setToolTip("cosine similarity to the query")
        layout.addWidget(self.score)
        self.right_button = QToolButton()
        self.right_button.setObjectName("rightOne")
        self.right_button.setText("✓")
        self.right_button.setToolTip("This is the right one: the model learns it now")
        self.right_button.clicked.connect(lambda: self.hit is not None and self.right_one.emit(self.hit))
        layout.addWidget(self.right_button)

    def show_hit(self, rank: int, hit, play_reason: str | None, matches: bool) -> None:
        """`matches`: the hit has the top hit's label (drawn green, so that agreeing answers stand out)."""
        self.hit = hit
        self.rank_label.setText(f"{rank}.")
        if self.modality == "image":
            self.thumb.setPixmap(self._thumbnail(hit.path))
        if self.modality == "audio":
            self.play_button.setEnabled(play_reason is None)
            self.play_button.setToolTip(play_reason or f"Play {hit.path}")
        text = hit.caption or (Path(hit.path).parent.name + "/" + Path(hit.path).name if hit.path else "")
        label = "" if hit.label is None else f"label {hit.shown_label()}"
        self.description.setText(f"<b>{_escape(text)}</b><br><span style='color:gray'>{label}</span>"
                                 if self.modality != "image" else f"<span>{label}</span>")
        self.description.setToolTip(hit.path or hit.caption or "")
        self.score.setText(f"{hit.score:.3f}")
        if matches != self._matches:    # a style sheet is re-parsed on every set: only when it changes
            self._matches = matches
            self.setStyleSheet("#resultRow { background: rgba(60, 170, 80, 45); border-radius: 4px; }"
                               if matches else "")

    def _thumbnail(self, path: str | None) -> QPixmap:
        """Scaled once per file version (a file rewritten, or unreadable before, is read again)."""
        try:
            key = (path, os.stat(path).st_mtime_ns) if path else None
        except OSError:
            key = None
        if key is None:
            return QPixmap()
        if key not in self.thumbnails:
            if len(self.thumbnails) >= THUMBNAILS_KEPT:
                self.thumbnails.pop(next(iter(self.thumbnails)))
            pixmap = QPixmap(path)
            self.thumbnails[key] = pixmap if pixmap.isNull() else pixmap.scaledToHeight(40, Qt.SmoothTransformation)
        return self.thumbnails[key]


class ResultsView(QWidget):
    shown = Signal(object)              # the rows now show this QueryAnswer
    shown_asked = Signal(object, object)  # what was asked (as given to show_answer) and its QueryAnswer, shown
    play_requested = Signal(str)
    correction_requested = Signal(object, object)   # the QueryAnswer shown and the Hit marked right in it
    label_given = Signal(object, str, str)          # the QueryAnswer shown, the gallery, the right answer typed

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
        self.answer = None                # the QueryAnswer the rows show
        self.right_label = QLineEdit()
        self.right_label.setObjectName("rightLabel")
        self.right_label.setPlaceholderText("None is right? Type the right answer (a label or a caption)")
        self.right_label.returnPressed.connect(self._typed)
        self.learn_button = QPushButton("Learn it")
        self.learn_button.setToolTip("The model learns the answer typed for the query shown, now")
        self.learn_button.clicked.connect(self._typed)
        self.learnt_label = QLabel("")
        self.learnt_label.setObjectName("learntLabel")
        self.learnt_label.setWordWrap(True)
        correction = QHBoxLayout()
        correction.addWidget(self.right_label, 1)
        correction.addWidget(self.learn_button)
        self._set_correctable(False)
        self.rows: dict[str, list[ResultRow]] = {}
        self._shape: tuple[tuple[str, int], ...] = ()     # (modality, k) of each column of rows
        self._thumbnails: dict[tuple, QPixmap] = {}     # (path, mtime) -> scaled thumbnail
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
        layout.addLayout(correction)
        layout.addWidget(self.learnt_label)

    # ------------------------------------------------------------------ corrections
    def _set_correctable(self, on: bool) -> None:
        self.right_label.setEnabled(on)
        self.learn_button.setEnabled(on)

    def _typed(self) -> None:
        text = self.right_label.text().strip()
        if self.answer is None or not text:
            return
        target = ANSWER_GALLERY[self.answer.modality]
        if target not in self.answer.results:
            target = next(iter(self.answer.results))
        self.label_given.emit(self.answer, target, text)

    def learning(self, label: str) -> None:
        self.learnt_label.setText(f"Learning “{label}”…")

    def show_learnt(self, learnt) -> None:
        """A CorrectionLearnt: what was learnt, how fast, how many are held."""
        self.right_label.clear()
        if 0 <= learnt.latest < len(learnt.held):
            c = learnt.held[learnt.latest]
            self.learnt_label.setText(f"✓ Learnt: {c.modality} “{shown(c.query)}” is {c.label} ({1e3 * learnt.seconds:.0f} ms"
                                      f"); the next query benefits. {len(learnt.held)} corrections held (Memory panel).")

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

    def show_answer(self, answer, description: str, asked=None) -> None:
        """A QueryAnswer: the labels at once, the rows now or (in a stream) a little later. `asked`: what
        the query was (an utterance heard…), handed back with the answer by `shown_asked` once shown."""
        adapt = " · memory adapted" if answer.adapt else ""
        self.query_label.setText(f"Query ({answer.modality}): {description}{adapt}")
        self.latency_label.setText(f"{answer.latency_ms:.0f} ms")
        self._due = (answer, asked)
        wait = self.shown_at + ROWS_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._show_due()
        elif not self._timer.isActive():
            self._timer.start(int(1000 * wait) + 1)

    def _show_due(self) -> None:
        # A timer still pending from an earlier answer would show the next one too soon after this one.
        self._timer.stop()
        due, self._due = self._due, None
        if due is None:
            return
        answer, asked = due
        self.shown_at = time.monotonic()
        self.answer = answer
        self._set_correctable(answer.query_id >= 0 and bool(answer.results))
        shape = tuple((modality, len(answer.results[modality])) for modality in MODALITY_TITLES
                      if answer.results.get(modality) is not None)
        if shape != self._shape:
            self._build(shape)
        for modality, _ in shape:
            hits = answer.results[modality]
            for rank, (row, hit) in enumerate(zip(self.rows[modality], hits), start=1):
                row.show_hit(rank, hit, self.play_reason, matches=hit.label is not None and hit.label == hits[0].label)
        self.shown.emit(answer)
        if asked is not None:
            self.shown_asked.emit(asked, answer)

    def _build(self, shape: tuple[tuple[str, int], ...]) -> None:
        """A column of rows for each modality answered (made again only when that set or k changes)."""
        self._shape = shape
        while self.rows_layout.count():
            item = self.rows_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.rows = {}
        for modality, k in shape:
            box = QGroupBox(MODALITY_TITLES[modality])
            box.setObjectName(f"results-{modality}")
            column = QVBoxLayout(box)
            self.rows[modality] = []
            for _ in range(k):
                row = ResultRow(modality, self._thumbnails)
                row.play_requested.connect(self.play_requested)
                row.right_one.connect(lambda hit: self.answer is not None
                                      and self.correction_requested.emit(self.answer, hit))
                column.addWidget(row)
                self.rows[modality].append(row)
            column.addStretch(1)
            self.rows_layout.addWidget(box, 1)
