"""Teach, in the Retrieval panel (Teachable Machine style): the items added with "Add to my data set" teach
the model in use, with a live loss curve, progress and Stop; when it is done, the taught model answers
the queries and a table shows each of the user's items before and after.

The box only shows and asks: the panel hands it the run (a TrainingRun) and then the outcome (a
TeachOutcome). Stop ends the run with its checkpoint saved in its own folder; the model in use is only
ever replaced by a run that finished, so a stopped or failed Teach loses nothing.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from studio.curves import GrowingArray

DEFAULT_STEPS = 150     # about a minute on two CPU cores for the tiny model (`nlmm bench teach`)


SENSES = {"text": "reads", "image": "sees", "audio": "hears"}


def learning_said(learning) -> str:
    """' what the model hears (the rest stays as it was)' for a run that learns audio only; '' when every
    part learns."""
    if not learning:
        return ""
    return f" what the model {' and '.join(SENSES[m] for m in SENSES if m in learning)} (the rest stays as it was)"


class TeachBox(QGroupBox):
    teach_requested = Signal(int)        # steps
    stop_requested = Signal()
    adopted = Signal(object)             # TeachOutcome: the taught model is the one in use now
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Teach the model with my data set", parent)
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.steps.setValue(DEFAULT_STEPS)
        self.steps.setSuffix(" steps")
        self.teach_button = QPushButton("Teach")
        self.teach_button.setObjectName("teachButton")
        self.teach_button.clicked.connect(lambda: self.teach_requested.emit(self.steps.value()))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("teachStop")
        self.stop_button.setToolTip("Stop teaching: the model in use stays as it was")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("Add a few recordings or images per label, then press Teach.")
        self.status.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setMaximumHeight(110)
        self.plot.setLabel("left", "loss")
        self.plot.setMouseEnabled(False, False)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(width=2))
        self._steps, self._losses = GrowingArray(), GrowingArray()
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["your item", "label", "top-1 before", "top-1 after"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setMaximumHeight(160)
        self.table.hide()
        row = QHBoxLayout()
        row.addWidget(self.steps)
        row.addWidget(self.teach_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)
        layout.addWidget(self.table)
        self.running = False
        self.learning = ""              # what the run teaches, when not every part learns
        self.set_ready(False, "Load a model first")

    def set_ready(self, ready: bool, reason: str = "") -> None:
        """Whether Teach can start now (a model and a data set folder; no run going)."""
        self.teach_button.setEnabled(ready and not self.running)
        self.teach_button.setToolTip("Fine-tune the model in use on your data set" if ready else reason)

    # ------------------------------------------------------------------ a run
    def follow(self, run, adopt) -> None:
        """A Teach run (a TrainingRun): its curve and progress here; once it finished, `adopt(checkpoint)`
        (a task giving a TeachOutcome) puts the taught model in use."""
        self.started(run.request.get("steps") or 0)
        run.began.connect(lambda started: setattr(self, "learning", learning_said(started.learning)))
        run.update.connect(lambda update: self.add_steps(update.steps))
        run.result.connect(lambda final: self._run_ended(final, adopt))
        run.error.connect(lambda message: (self.ended(f"Teaching could not start: {message}"),
                                           self.failed.emit(message)))
        run.cancelled.connect(lambda: self.ended("Teaching cancelled; the model in use is unchanged."))

    def _run_ended(self, final, adopt) -> None:
        if final.kind != "finished":
            why = (f"Stopped at step {final.step}" if final.kind == "stopped" else f"Teaching failed: {final.message}")
            kept = f"; the partial run is kept in {final.checkpoint}" if final.checkpoint else ""
            self.ended(f"{why}. The model in use is unchanged{kept}.")
            return
        self.status.setText("Taught: comparing your items before and after…")
        task = adopt(final.checkpoint)
        task.result.connect(self._adopted)
        task.error.connect(lambda message: (self.ended(f"The taught model could not be used ({message}); "
                                                       "the previous one still answers."),
                                            self.failed.emit(message)))

    def _adopted(self, outcome) -> None:
        self.ended("")
        self.show_outcome(outcome)
        self.adopted.emit(outcome)

    def started(self, total_steps: int) -> None:
        self.running = True
        self.teach_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._steps, self._losses = GrowingArray(), GrowingArray()
        self.curve.setData([], [])
        self.progress.setRange(0, 0)      # busy until the first step: the data and the model load
        self.status.setText("Loading your data set and the model…")
        self._total = total_steps
        self.learning = ""

    def add_steps(self, steps) -> None:
        for metrics in steps:
            self._steps.append(metrics.step)
            self._losses.append(metrics.loss)
        if not steps:
            return
        last = steps[-1]
        self.curve.setData(self._steps.view(), self._losses.view())
        self.progress.setRange(0, last.total_steps)
        self.progress.setValue(last.step)
        self.status.setText(f"Teaching{self.learning}: step {last.step}/{last.total_steps}, loss {last.loss:.3f}")

    def ended(self, text: str) -> None:
        """The run is over (finished, stopped, failed or never began)."""
        self.running = False
        self.stop_button.setEnabled(False)
        self.teach_button.setEnabled(True)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.status.setText(text)

    def show_outcome(self, outcome) -> None:
        names = outcome.label_names
        self.table.setRowCount(len(outcome.items))
        for row, item in enumerate(outcome.items):
            cells = [item.name, names.get(item.label, str(item.label)),
                     _shown(item.before, item.label, names), _shown(item.after, item.label, names)]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.show()
        self.status.setText(f"Taught. The model in use is {outcome.model.path}. Top-1 on your "
                            f"{len(outcome.items)} items: {100 * outcome.top1('before'):.0f} % before, "
                            f"{100 * outcome.top1('after'):.0f} % after.")


def _shown(found: int | None, label: int, names: dict) -> str:
    if found is None:
        return "—"
    return f"{names.get(found, str(found))} {'✓' if found == label else '✗'}"
