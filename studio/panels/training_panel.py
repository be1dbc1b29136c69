"""Training: pick the data, start / pause / resume / stop, watch the curves, browse past runs.

The panel asks the window to start a run (`start_requested`) and follows the `TrainingRun` handle it is
given (`follow`); the curves (`training_curves.py`), the run history (`run_history.py`) and the comparison
of past runs (`run_comparison.py`, shown in the curves' place) are widgets of their own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter,
                               QStackedWidget, QVBoxLayout, QWidget)

from studio.panels.data_source import DataSourceFields
from studio.panels.run_comparison import RunComparison
from studio.panels.run_history import RunHistory
from studio.panels.training_curves import TrainingCurves

STEP_FORMAT = "step %v / %m"


def format_eta(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TrainingPanel(QWidget):
    start_requested = Signal(object)            # {"data": spec, "device": str|None}
    load_checkpoint_requested = Signal(str)
    message = Signal(str)

    def __init__(self, runs_dir: Path, parent: QWidget | None = None, file_dialogs=None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.host = None
        self.run = None                 # the TrainingRun followed (the newest)
        self.state = "idle"             # idle | starting | running | paused | stopping
        self.config_valid, self.config_message = True, ""
        self.out_dir: str | None = None
        self.step = 0

        # ----- data source and device
        self.data_source = DataSourceFields(
            self, file_dialogs, placeholder="folder (for Flickr8k or your own data)",
            tooltip="What to train on: the built-in spoken-numbers set, Flickr8k + audio captions, "
                    "or your own folder (items.csv)")
        self.device = QComboBox()
        self.device.addItem("Auto", None)
        self.device.addItem("CPU", "cpu")
        self.device.addItem("CUDA GPU", "cuda")
        self.device.setToolTip("Auto: CUDA when a GPU is present, else the CPU")

        # ----- controls
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the checkpoint is saved "
                                    "(while the data set loads: cancel the start)")
        self.train_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.rate_label = QLabel("Not training")
        self.rate_label.setObjectName("rateLabel")
        self.reason_label = QLabel("")
        self.reason_label.setStyleSheet("color: #d03030;")
        self.reason_label.setWordWrap(True)

        top = QGridLayout()
        top.addWidget(QLabel("Data:"), 0, 0)
        top.addWidget(self.data_source.kind, 0, 1)
        top.addWidget(self.data_source.path, 0, 2)
        top.addWidget(self.data_source.browse, 0, 3)
        top.addWidget(QLabel("Device:"), 0, 4)
        top.addWidget(self.device, 0, 5)
        buttons = QHBoxLayout()
        for button in (self.train_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.rate_label)
        top.addLayout(buttons, 1, 0, 1, 6)
        top.addWidget(self.reason_label, 2, 0, 1, 6)
        top.setColumnStretch(2, 1)

        self.curves = TrainingCurves()
        self.history = RunHistory(runs_dir)
        self.history.show_requested.connect(self.show_run)
        self.history.load_requested.connect(self.load_checkpoint_requested)
        self.history.message.connect(self.message)
        self.history.compare_requested.connect(self.compare_runs)
        self.comparison = RunComparison()
        self.comparison.back_requested.connect(lambda: self._front(self.curves))
        self.in_view = True
        self.stack = QStackedWidget()   # the live curves, or the comparison of past runs in their place
        self.stack.addWidget(self.curves)
        self.stack.addWidget(self.comparison)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.stack)
        splitter.addWidget(self.history)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([900, 260])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        self._idle("Not training")

    # ------------------------------------------------------------------ set-up
    def attach(self, host) -> None:
        """The host reads the run logs for the history and the curves (on its files thread)."""
        self.host = host
        self.history.attach(host)

    def set_cuda(self, available: bool, reason: str) -> None:
        item = self.device.model().item(2)
        item.setEnabled(available)
        item.setToolTip("" if available else reason)
        if not available:
            self.device.setToolTip(f"Auto: CUDA when a GPU is present, else the CPU. CUDA: {reason}")

    def set_config_valid(self, valid: bool, message: str) -> None:
        self.config_valid, self.config_message = valid, message
        self._update_buttons()

    def data_spec(self) -> str:
        return self.data_source.spec()

    def set_data_spec(self, spec: str) -> None:
        self.data_source.set_spec(spec)

    def set_in_view(self, in_view: bool) -> None:
        self.in_view = in_view
        self.curves.set_in_view(in_view and self.stack.currentWidget() is self.curves)

    def _front(self, widget) -> None:
        """The curves or the comparison in front; the curves draw only while they are."""
        self.stack.setCurrentWidget(widget)
        self.set_in_view(self.in_view)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self.state != "idle" or not self.config_valid:
            return
        problem = self.data_source.problem()
        if problem:
            self.reason_label.setText(problem)
            return
        self.state = "starting"
        self.reason_label.setText("")
        self.rate_label.setText("Loading data and building the model…")
        self.progress.setRange(0, 0)
        self._update_buttons()
        self.start_requested.emit({"data": self.data_spec(), "device": self.device.currentData()})

    def pause(self) -> None:
        if self.state == "running" and self.run is not None:
            self.run.pause()
            self.pause_button.setEnabled(False)

    def resume(self) -> None:
        if self.state == "paused" and self.run is not None:
            self.run.resume()
            self.resume_button.setEnabled(False)

    def stop(self) -> None:
        if self.run is None or self.state not in ("starting", "running", "paused"):
            return
        self.run.stop()         # still loading the data: abandons it; running: stops after this step
        self.rate_label.setText("Cancelling…" if self.state == "starting" else "Stopping after this step…")
        if self.state != "starting":
            self.state = "stopping"
        self._update_buttons()

    def start_failed(self, message: str) -> None:
        """The run could not start (bad data folder, …): back to idle with the reason."""
        if self.state == "starting":
            self._idle("Not training")
        self.reason_label.setText(message)

    # ------------------------------------------------------------------ following a run
    def follow(self, run) -> None:
        """Follow a TrainingRun from its start to its end."""
        self.run = run
        run.progress.connect(self._on_progress)
        run.began.connect(self._on_began)
        run.update.connect(self._on_update)
        run.state_changed.connect(self._on_state)
        run.result.connect(self._on_ended)
        run.error.connect(self.start_failed)
        run.cancelled.connect(lambda: self.start_failed("Training cancelled before its first step"))

    def _on_progress(self, done: float, total: float) -> None:
        """While a run starts: how far loading its data set has come."""
        if self.state != "starting" or self.run.is_cancelled():
            return
        if total > 0:
            self.progress.setFormat("%p%")
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.rate_label.setText(f"Loading the data set… {int(done)} of {int(total)}")
        else:
            self.progress.setRange(0, 0)
            self.rate_label.setText("Building the model…")

    def _on_began(self, started) -> None:
        self.state = "running"
        self.out_dir, self.step = started.out_dir, 0
        self.curves.total_steps = started.total_steps
        self.progress.setFormat(STEP_FORMAT)
        self.progress.setRange(0, started.total_steps)
        self.progress.setValue(started.start_step)
        self.rate_label.setText(f"Training on {started.device}…")
        self.history.clear_warnings()
        self.curves.clear(started.levels, started.chunk_sizes)
        self._front(self.curves)        # a new run: its live curves, not an old comparison
        self._update_buttons()
        self.message.emit(f"Training into {started.out_dir}")

    def _on_update(self, update) -> None:
        self.curves.add(update.steps, update.evaluations)
        if update.warnings:
            self.history.show_warnings(list(update.warnings))
        if not update.steps:
            return
        first, last = self.step == 0, update.steps[-1]
        self.step = last.step
        self.progress.setValue(last.step)
        if self.state == "running":
            self.rate_label.setText(f"{last.samples_per_s:.0f} samples/s · ETA {format_eta(last.eta_s)}"
                                    f" · loss {last.loss:.3f}")
        if first:
            self.history.set_running(self.out_dir)    # the new run joins the history at once
        else:
            self.history.show_progress(last)

    def _on_state(self, state: str) -> None:
        if state == "paused" and self.state == "running":
            self.state = "paused"
            self.rate_label.setText(f"Paused at step {self.step}")
        elif state == "resumed" and self.state == "paused":
            self.state = "running"
            self.rate_label.setText("Resumed…")
        self._update_buttons()

    def _on_ended(self, ended) -> None:
        where = f" — checkpoint {ended.checkpoint}" if ended.checkpoint else ""
        self._idle(ended.message)
        self.message.emit(f"Training {ended.message}{where}")
        if ended.kind == "failed":
            self.reason_label.setText(ended.message)
        self.history.set_running(None)

    def _idle(self, text: str) -> None:
        self.state = "idle"
        self.progress.setFormat(STEP_FORMAT)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.rate_label.setText(text)
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self.state == "idle"
        self.train_button.setEnabled(idle and self.config_valid)
        self.train_button.setToolTip("Start training with the config of the Model & levels panel (Ctrl+Enter)"
                                     if self.config_valid else f"Fix the config first: {self.config_message}")
        self.pause_button.setEnabled(self.state == "running")
        self.resume_button.setEnabled(self.state == "paused")
        self.stop_button.setEnabled(self.state in ("starting", "running", "paused")
                                    and not (self.run is not None and self.run.is_cancelled()))
        self.data_source.set_enabled(idle)
        self.device.setEnabled(idle)

    # ------------------------------------------------------------------ past runs
    def show_run(self, folder: str) -> None:
        """The curves of a logged run, read on the host's files thread."""
        if self.state != "idle":
            self.message.emit("Curves of another run can be shown once training stops")
            return
        if self.host is None:
            return
        from engine.training.runs import read_run
        self.rate_label.setText(f"Reading {Path(folder).name}…")
        task = self.host.submit("run curves", lambda _task: read_run(folder), files=True)
        task.result.connect(lambda history: self._show_history(folder, history))
        task.error.connect(lambda message: self.rate_label.setText(f"Could not read {Path(folder).name}"))

    def _show_history(self, folder: str, history) -> None:
        if self.state != "idle":        # a run started while the log was read
            return
        self._front(self.curves)
        self.curves.show_history(history)
        self.history.current = folder
        last = history.steps[-1].step if history.steps else 0
        self.progress.setRange(0, max(1, history.total_steps))
        self.progress.setValue(last)
        self.rate_label.setText(f"Showing {Path(folder).name}")

    def compare_runs(self, folders: list[str]) -> None:
        """Two or more logged runs overlaid in the curves' place, read on the host's files thread."""
        if self.host is None:
            return
        from engine.training.runs import read_for_comparison
        task = self.host.submit("run comparison", lambda t: read_for_comparison(folders, progress=t.report), files=True)
        task.error.connect(lambda message: self.message.emit(f"Could not compare the runs: {message}"))
        self.comparison.reading(task, len(folders))     # progress in its title; Back cancels
        self._front(self.comparison)
