"""Compare runs: two or more logged runs overlaid, one colour each — loss per pair, recall@1 per direction,
learning rate per level (each plot shows the one picked above it) — and their configs' differences side by
side, one column a run.

The runs are read on the host's files thread (`engine.training.runs.read_for_comparison`); this widget only
draws what it is handed. Plot items are made once per comparison and fed with `setData`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from engine.config import shown
from engine.training.runs import config_differences
from engine.vocabulary import DIRECTION_NAMES, PAIR_NAMES
from studio.curves import Series
from studio.panels.training_curves import DENSE, LEFT_AXIS_PX, PALETTE, _pen

SMOOTHING = 0.6     # the curves' default: the loss is read through the same moving average


def _combo(name: str, items, tooltip: str) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(name)
    combo.addItems(list(items))
    combo.setToolTip(tooltip)
    return combo


class RunComparison(QWidget):
    back_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runComparison")
        self.runs: tuple = ()           # the ComparedRun shown, in column order
        self.items: list[dict] = []     # each run's plot items
        self._smoothed: dict = {}       # (run folder, pair) -> the smoothed loss: computed once, not per redraw
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.back_button = QPushButton("Back to the curves")
        self.back_button.clicked.connect(self._back)
        self.task = None                # the task reading the runs to compare, while it reads
        self.loss_choice = _combo("compareLoss", ("total",) + PAIR_NAMES, "Which loss curve to overlay")
        self.recall_choice = _combo("compareRecall", DIRECTION_NAMES, "Which retrieval direction to overlay")
        self.lr_choice = _combo("compareRate", ("outer",), "Which level's learning rate to overlay")
        for combo in (self.loss_choice, self.recall_choice, self.lr_choice):
            combo.currentTextChanged.connect(lambda _text: self.redraw())

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("comparisonPlots")
        self.loss_plot = self.plots.addPlot(row=0, col=0, title="Contrastive loss")
        self.recall_plot = self.plots.addPlot(row=0, col=1, title="Recall@1 on the validation split")
        self.lr_plot = self.plots.addPlot(row=0, col=2, title="Learning rate")
        for plot, ylabel in ((self.loss_plot, "InfoNCE loss (nats)"), (self.recall_plot, "recall@1 (%)"),
                             (self.lr_plot, "learning rate (log scale)")):
            plot.setLabel("bottom", "training step")
            plot.setLabel("left", ylabel)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.getAxis("left").setWidth(LEFT_AXIS_PX)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        self.legend = self.loss_plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.lr_plot.setLogMode(y=True)
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)
        self.recall_plot.setYRange(0, 100)

        self.differences = QTableWidget()
        self.differences.setObjectName("configDifferences")
        self.differences.setEditTriggers(QTableWidget.NoEditTriggers)
        self.differences.horizontalHeader().setStretchLastSection(True)
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #d03030;")

        choices = QHBoxLayout()
        for label, combo in (("Loss:", self.loss_choice), ("Recall@1:", self.recall_choice),
                             ("Learning rate:", self.lr_choice)):
            choices.addWidget(QLabel(label))
            choices.addWidget(combo)
        choices.addStretch(1)
        choices.addWidget(self.back_button)
        table = QWidget()
        table_layout = QVBoxLayout(table)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(QLabel("Config differences (only the settings that differ)"))
        table_layout.addWidget(self.differences, 1)
        table_layout.addWidget(self.problems)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.plots)
        splitter.addWidget(table)
        splitter.setSizes([420, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(choices)
        layout.addWidget(splitter, 1)

    # ------------------------------------------------------------------ data
    def reading(self, task, count: int) -> None:
        """Runs being read (`task` -> ComparedRun tuple): progress in the title; the newest request wins."""
        if self.task is not None:
            self.task.cancel()
        self.task = task
        self.title.setText(f"Reading {count} runs to compare…")
        task.progress.connect(lambda done, total: self.task is task and self.title.setText(
            f"Reading {count} runs to compare… {int(done) + 1} of {int(total)}"))
        task.result.connect(lambda runs: self.task is task and self.show_runs(runs))
        task.finished.connect(lambda: self.task is task and setattr(self, "task", None))

    def _back(self) -> None:
        """Back to the curves; runs still being read are not wanted any more."""
        if self.task is not None:
            self.task.cancel()
        self.back_requested.emit()

    def show_runs(self, runs) -> None:
        """ComparedRun of engine.training.runs, in the order they are to be listed."""
        self.runs = tuple(runs)
        self._smoothed = {}
        names = [run.name for run in self.runs]
        self.title.setText(f"<b>Comparing {len(names)} runs:</b> " + ", ".join(
            f"<span style='color:{PALETTE[i % len(PALETTE)]}'>■</span> {name}" for i, name in enumerate(names)))
        levels = list(dict.fromkeys(level for run in self.runs for level in run.history.levels)) + ["outer"]
        current = self.lr_choice.currentText()
        self.lr_choice.blockSignals(True)
        self.lr_choice.clear()
        self.lr_choice.addItems(levels)
        self.lr_choice.setCurrentText(current if current in levels else levels[0])
        self.lr_choice.blockSignals(False)
        for plot in (self.loss_plot, self.recall_plot, self.lr_plot):
            plot.clear()
        self.legend.clear()
        self.items = []
        for i, run in enumerate(self.runs):
            color = PALETTE[i % len(PALETTE)]
            self.items.append({
                "raw": self.loss_plot.plot(pen=_pen(color, 60, 1.0), antialias=False, **DENSE),
                "loss": self.loss_plot.plot(pen=_pen(color, 255, 1.8), name=run.name, **DENSE),
                "recall": self.recall_plot.plot(pen=_pen(color), symbol="o", symbolSize=5, symbolBrush=color,
                                                symbolPen=None),
                "lr": self.lr_plot.plot(pen=_pen(color), **DENSE)})
        self._show_differences()
        self.redraw()

    def _show_differences(self) -> None:
        """One row a differing setting (its key path), one column a run; a run without a config says so."""
        rows = config_differences([run.config for run in self.runs])
        present = [run.config is not None for run in self.runs]
        note = ("fewer than two runs have a config to compare" if sum(present) < 2 else
                "the configs are the same" if not rows else "")
        if note:
            rows = [(note, (None,) * len(self.runs))]
        table = self.differences
        table.clear()
        table.setColumnCount(len(self.runs))
        table.setRowCount(len(rows))
        table.setHorizontalHeaderLabels([run.name for run in self.runs])
        table.setVerticalHeaderLabels([key for key, _ in rows])
        for r, (_key, values) in enumerate(rows):
            for c, value in enumerate(values):
                text = ("no config" if not present[c] else "" if note else "–" if value is None
                        else value if isinstance(value, str) else shown(value))
                cell = QTableWidgetItem(text)
                cell.setForeground(QBrush(QColor(PALETTE[c % len(PALETTE)])))
                table.setItem(r, c, cell)
        table.resizeColumnsToContents()
        self.problems.setText("\n".join(f"⚠ {run.config_problem}" for run in self.runs if run.config_problem))

    def curve(self, run, what: str) -> tuple[np.ndarray, np.ndarray]:
        """The (steps, values) of one run for the plot `what` ("loss", "recall", "lr") as chosen above it."""
        history = run.history
        if what == "recall":
            direction = self.recall_choice.currentText()
            points = [(e.step, 100.0 * e.recall[direction]["R@1"]) for e in history.evaluations
                      if direction in e.recall]
        elif what == "lr":
            level = self.lr_choice.currentText()
            points = [(s.step, s.lrs[level]) for s in history.steps if level in s.lrs]
        else:
            pair = self.loss_choice.currentText()
            points = [(s.step, s.loss if pair == "total" else s.pair_losses[pair]) for s in history.steps
                      if pair == "total" or pair in s.pair_losses]
        array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return array[:, 0], array[:, 1]

    def redraw(self) -> None:
        for run, items in zip(self.runs, self.items):
            x, y = self.curve(run, "loss")
            key = (run.folder, self.loss_choice.currentText())
            if key not in self._smoothed:
                series = Series(SMOOTHING)
                for step, value in zip(x, y):
                    series.append(step, value)
                self._smoothed[key] = series.smooth.view().copy()
            items["raw"].setData(x, y)
            items["loss"].setData(x, self._smoothed[key])
            items["recall"].setData(*self.curve(run, "recall"))
            items["lr"].setData(*self.curve(run, "lr"))
        for plot in (self.loss_plot, self.lr_plot):
            plot.enableAutoRange()
        self.recall_plot.setYRange(0, 100)
