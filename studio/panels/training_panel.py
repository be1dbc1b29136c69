"""Training: pick the data, start / pause / resume / stop, watch the curves, browse past runs.

Plot items are made once; every worker update (≤ 30 a second) appends the new steps to growing numpy
arrays (`studio.curves`) and calls `setData` once per curve. The loss curves are smoothed with
TensorBoard's debiased moving average, the raw curve drawn faintly behind.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QProgressBar, QPushButton, QSlider,
                               QSplitter, QVBoxLayout, QWidget)

from studio.curves import GrowingArray, Series, one_per_pixel
from studio.panels.data_source import DataSourceFields
from studio.plot_range import FollowRange

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
PAIRS = ["image-text", "image-audio", "text-audio"]
DIRECTIONS = ["image->text", "text->image", "image->audio", "audio->image", "text->audio", "audio->text"]


STEP_FORMAT = "step %v / %m"
LEFT_AXIS_PX = 66


def format_eta(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# A curve of thousands of steps is drawn from its envelope (min and max per pixel column, pyqtgraph's
# "peak" downsampling): the same picture as every point, at a fraction of the antialiased drawing.
DENSE = {"autoDownsampleFactor": 1.0}


def _pen(color: str, alpha: int = 255, width: float = 1.6):
    qcolor = pg.mkColor(color)
    qcolor.setAlpha(alpha)
    return pg.mkPen(qcolor, width=width)


class TrainingPanel(QWidget):
    start_requested = Signal(object)            # {"data": spec, "device": str|None}
    load_checkpoint_requested = Signal(str)
    message = Signal(str)

    def __init__(self, runs_dir: Path, parent: QWidget | None = None, file_dialogs=None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.runs_dir = Path(runs_dir)
        self.dialogs = file_dialogs
        self.state = "idle"             # idle | starting | running | paused | stopping
        self.stop_when_started = False
        self.config_valid, self.config_message = True, ""
        self._stale = False             # curves gained points while the panel was hidden
        self.in_view = True
        self._running_item: QListWidgetItem | None = None   # the running run's line in the history
        self.redraws = 0
        self.last_checkpoint: str | None = None
        self.current_out_dir: str | None = None
        self.total_steps = 0
        self.step = 0

        # ----- data source and device
        self.data_source = DataSourceFields(
            self, self.dialogs, placeholder="folder (for Flickr8k or your own data)",
            tooltip="What to train on: the built-in spoken-numbers set, Flickr8k + audio captions, "
                    "or your own folder (items.csv)")
        self.source, self.source_path, self.browse_button = (self.data_source.kind, self.data_source.path,
                                                             self.data_source.browse)
        self.device = QComboBox()
        self.device.addItem("Auto", None)
        self.device.addItem("CPU", "cpu")
        self.device.addItem("CUDA GPU", "cuda")
        self.device.setToolTip("Auto: CUDA when a GPU is present, else the CPU")

        # ----- controls
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Start training with the config of the Model & levels panel (Ctrl+Enter)")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the checkpoint is saved "
                                    "(while the data set loads: cancel the start)")
        self.train_button.clicked.connect(self.start)
        self.progress = QProgressBar()
        self.progress.setFormat(STEP_FORMAT)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.rate_label = QLabel("Not training")
        self.rate_label.setObjectName("rateLabel")
        self.reason_label = QLabel("")
        self.reason_label.setStyleSheet("color: #d03030;")
        self.reason_label.setWordWrap(True)

        top = QGridLayout()
        top.addWidget(QLabel("Data:"), 0, 0)
        top.addWidget(self.source, 0, 1)
        top.addWidget(self.source_path, 0, 2)
        top.addWidget(self.browse_button, 0, 3)
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

        # ----- plots
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("trainingPlots")
        self.loss_plot = self.plots.addPlot(row=0, col=0, title="Contrastive loss per pair")
        self.recall_plot = self.plots.addPlot(row=0, col=1, title="Recall@1 on the validation split")
        self.steps_plot = self.plots.addPlot(row=1, col=0, title="When each CMS level stepped")
        self.lr_plot = self.plots.addPlot(row=1, col=1, title="Learning rate per level")
        self.plots.ci.layout.setRowStretchFactor(0, 3)
        self.plots.ci.layout.setRowStretchFactor(1, 2)
        for plot, ylabel in ((self.loss_plot, "InfoNCE loss (nats)"), (self.recall_plot, "recall@1 (%)"),
                             (self.steps_plot, "level"), (self.lr_plot, "learning rate (log scale)")):
            plot.setLabel("bottom", "training step")
            plot.setLabel("left", ylabel)
            plot.showGrid(x=True, y=True, alpha=0.25)
            for side in ("bottom", "left"):  # major ticks only: minor grid lines and labels slowed each repaint
                plot.getAxis(side).setStyle(maxTickLevel=0)
            # a fixed width: tick labels of another length (the view moved) would otherwise re-lay out the
            # whole grid of plots and repaint all four; it also lines up the plots of a column
            plot.getAxis("left").setWidth(LEFT_AXIS_PX)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            legend = plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
            legend.setParentItem(plot.vb)
        self.steps_plot.showGrid(x=True, y=False)
        self.lr_plot.setLogMode(y=True)      # the levels' rates span orders of magnitude
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)   # "10¹ (x0.001)" read as 10 on a log axis
        for plot in (self.recall_plot, self.steps_plot, self.lr_plot):
            plot.setXLink(self.loss_plot)
        # the views follow the run without pyqtgraph's per-update auto-range (see studio/plot_range.py)
        self.follow = FollowRange([self.loss_plot, self.recall_plot, self.steps_plot, self.lr_plot],
                                  fixed_y={self.recall_plot: (0, 100), self.steps_plot: (-0.6, 0.6)})

        self.smoothing = QSlider(Qt.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("Exponential moving average (debiased, as in TensorBoard); raw curve drawn faintly")
        self.smoothing_label = QLabel("Smoothing 0.60")
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.log_y = QCheckBox("Log y (loss)")
        self.log_y.toggled.connect(self._log_changed)
        plot_controls = QHBoxLayout()
        plot_controls.addWidget(self.smoothing_label)
        plot_controls.addWidget(self.smoothing, 1)
        plot_controls.addWidget(self.log_y)

        # ----- run history
        self.runs = QListWidget()
        self.runs.setObjectName("runHistory")
        self.runs.setToolTip(f"Runs under {self.runs_dir}")
        self.runs.itemActivated.connect(lambda item: self.show_run(item.data(Qt.UserRole)))
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.show_run_button = QPushButton("Show curves")
        self.show_run_button.clicked.connect(self._show_selected_run)
        self.load_button = QPushButton("Load checkpoint into Retrieval")
        self.load_button.setObjectName("loadIntoRetrieval")
        self.load_button.clicked.connect(self._load_selected)
        history = QGroupBox("Runs")
        history_layout = QVBoxLayout(history)
        history_layout.addWidget(self.runs, 1)
        history_layout.addWidget(self.refresh_button)
        history_layout.addWidget(self.show_run_button)
        history_layout.addWidget(self.load_button)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        history_layout.addWidget(self.warnings)

        plots_box = QWidget()
        plots_layout = QVBoxLayout(plots_box)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        plots_layout.addWidget(self.plots, 1)
        plots_layout.addLayout(plot_controls)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(plots_box)
        splitter.addWidget(history)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([900, 260])

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self.pause_button.clicked.connect(self._pause)
        self.resume_button.clicked.connect(self._resume)
        self.stop_button.clicked.connect(self._stop)
        self.host = None
        self.clear_curves([])
        # the level markers are thinned to the pixels of the view: redone when it pans, zooms or resizes
        self.steps_plot.vb.sigXRangeChanged.connect(lambda *_: self._draw_level_steps())
        self.steps_plot.vb.sigResized.connect(lambda *_: self._draw_level_steps())
        self._update_buttons()
        self.refresh_runs()

    # ------------------------------------------------------------------ wiring
    def attach(self, host) -> None:
        self.host = host
        worker = host.worker
        worker.training_started.connect(self.on_started)
        worker.training_update.connect(self.on_update)
        worker.training_state.connect(self.on_state)
        worker.training_finished.connect(self.on_finished)
        worker.progress.connect(self.on_progress)
        worker.task_finished.connect(self.on_task_finished)

    def set_cuda(self, available: bool, reason: str) -> None:
        item = self.device.model().item(2)
        item.setEnabled(available)
        item.setToolTip("" if available else reason)
        if not available:
            self.device.setToolTip(f"Auto: CUDA when a GPU is present, else the CPU. CUDA: {reason}")

    def set_config_valid(self, valid: bool, message: str) -> None:
        self.config_valid, self.config_message = valid, message
        self._update_buttons()

    # ------------------------------------------------------------------ data source
    def data_spec(self) -> str:
        return self.data_source.spec()

    def set_data_spec(self, spec: str) -> None:
        self.data_source.set_spec(spec)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self.state != "idle" or not self.config_valid:
            return
        problem = self.data_source.problem()
        if problem:
            self.reason_label.setText(problem)
            return
        self.state = "starting"
        self.stop_when_started = False
        self.reason_label.setText("")
        self.rate_label.setText("Loading data and building the model…")
        self.progress.setRange(0, 0)
        self._update_buttons()
        self.start_requested.emit({"data": self.data_spec(), "device": self.device.currentData()})

    def start_failed(self, message: str) -> None:
        """The worker could not start the run (bad data folder, …): back to idle with the reason."""
        self.stop_when_started = False
        if self.state == "starting":
            self.state = "idle"
            self.progress.setFormat(STEP_FORMAT)
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.rate_label.setText("Not training")
        self.reason_label.setText(message)
        self._update_buttons()

    def _pause(self) -> None:
        if self.state == "running" and self.host:
            self.host.pause_training()
            self.pause_button.setEnabled(False)

    def _resume(self) -> None:
        if self.state == "paused" and self.host:
            self.host.resume_training()
            self.resume_button.setEnabled(False)

    def on_progress(self, topic: str, done: float, total: float) -> None:
        """While a run starts: how far loading its data set has come."""
        if topic != "training" or self.state != "starting" or self.stop_when_started:
            return
        if total > 0:
            self.progress.setFormat("%p%")
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.rate_label.setText(f"Loading the data set… {int(done)} of {int(total)}")
        else:
            self.progress.setRange(0, 0)
            self.rate_label.setText("Building the model…")

    def on_task_finished(self, topic: str, outcome: str) -> None:
        if topic == "training" and outcome == "cancelled":
            self.start_failed("Training cancelled before its first step")

    def _stop(self) -> None:
        if self.state == "starting" and self.host:        # still loading the data: abandon it
            self.host.cancel("training")
            self.stop_when_started = True   # in case the run got going before the cancel arrived
            self.rate_label.setText("Cancelling…")
            self.stop_button.setEnabled(False)
            return
        if self.state in ("running", "paused") and self.host:
            self.host.stop_training()
            self.state = "stopping"
            self.rate_label.setText("Stopping after this step…")
            self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self.state == "idle"
        self.train_button.setEnabled(idle and self.config_valid)
        if not self.config_valid:
            self.train_button.setToolTip(f"Fix the config first: {self.config_message}")
        else:
            self.train_button.setToolTip("Start training with the config of the Model & levels panel (Ctrl+Enter)")
        self.pause_button.setEnabled(self.state == "running")
        self.resume_button.setEnabled(self.state == "paused")
        self.stop_button.setEnabled(self.state in ("starting", "running", "paused"))
        self.data_source.set_enabled(idle)
        self.device.setEnabled(idle)

    # ------------------------------------------------------------------ worker events
    def on_started(self, info: dict) -> None:
        self.state = "running"
        if self.stop_when_started:
            self.stop_when_started = False
            QTimer.singleShot(0, self._stop)
        self.current_out_dir = info["out_dir"]
        self.step = 0
        self.total_steps = info["total_steps"]
        self.progress.setFormat(STEP_FORMAT)
        self.progress.setRange(0, self.total_steps)
        self.progress.setValue(info.get("start_step", 0))
        self.rate_label.setText(f"Training on {info.get('device', 'cpu')}…")
        self.warnings.setText("")
        self.clear_curves(info["levels"], info.get("chunk_sizes"))
        self._update_buttons()

    def on_update(self, update: dict) -> None:
        first = self.step == 0 or self.runs.count() == 0
        self.add_points(update.get("steps", []), update.get("evals", []))
        if update.get("steps"):
            last = update["steps"][-1]
            self.step = last["step"]
            self.progress.setValue(last["step"])
            if self.state == "running":
                self.rate_label.setText(f"{last['samples_per_s']:.0f} samples/s · ETA {format_eta(last['eta_s'])}"
                                        f" · loss {last['loss']:.3f}")
        if update.get("warnings"):
            shown = self.warnings.text().split("\n") if self.warnings.text() else []
            shown = (shown + [f"⚠ {w}" for w in update["warnings"]])[-4:]
            self.warnings.setText("\n".join(shown))
        if update.get("checkpoints"):
            self.last_checkpoint = update["checkpoints"][-1]
        if first and update.get("steps"):
            self.refresh_runs(select=self.current_out_dir)   # the new run joins the history at once
        elif update.get("steps"):
            self._show_run_progress(update["steps"][-1])

    def _show_run_progress(self, last: dict) -> None:
        """The running run's line in the history follows its steps (without re-reading its metrics)."""
        item = self._running_item
        if item is None or self.current_out_dir is None:
            return
        item.setText(f"{Path(self.current_out_dir).name}\n   {step_summary(last)}, training")

    def on_state(self, state: str) -> None:
        if state == "paused" and self.state in ("running",):
            self.state = "paused"
            self.rate_label.setText(f"Paused at step {self.step}")
        elif state == "resumed" and self.state == "paused":
            self.state = "running"
            self.rate_label.setText("Resumed…")
        self._update_buttons()

    def on_finished(self, final: dict) -> None:
        self.state = "idle"
        self.last_checkpoint = final.get("checkpoint") or self.last_checkpoint
        where = f" — checkpoint {final['checkpoint']}" if final.get("checkpoint") else ""
        self.rate_label.setText(f"{final.get('message', final.get('kind'))}")
        self.message.emit(f"Training {final.get('message', final.get('kind'))}{where}")
        if final.get("kind") == "failed":
            self.reason_label.setText(final.get("message", ""))
        self._update_buttons()
        self.refresh_runs(select=self.current_out_dir)

    # ------------------------------------------------------------------ curves
    def clear_curves(self, levels: list[str], chunk_sizes: list[int] | None = None) -> None:
        for plot in (self.loss_plot, self.recall_plot, self.steps_plot, self.lr_plot):
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        weight = self.smoothing.value() / 100
        self.loss_series = {name: Series(weight) for name in ["total"] + PAIRS}
        self.loss_items = {}
        for i, name in enumerate(["total"] + PAIRS):
            color = "#888888" if name == "total" else PALETTE[i - 1]
            raw = self.loss_plot.plot(pen=_pen(color, 60, 1.0), antialias=False, **DENSE)
            smooth = self.loss_plot.plot(pen=_pen(color, 255, 2.0 if name == "total" else 1.6), name=name, **DENSE)
            self.loss_items[name] = (raw, smooth)
        self.recall_series = {d: Series(0.0) for d in DIRECTIONS}
        self.recall_items = {d: self.recall_plot.plot(pen=_pen(PALETTE[i]), symbol="o", symbolSize=5,
                                                      symbolBrush=PALETTE[i], symbolPen=None, name=d)
                             for i, d in enumerate(DIRECTIONS)}
        self.levels = list(levels)
        lr_names = self.levels + ["outer"]
        self.lr_series = {name: Series(0.0) for name in lr_names}
        self.lr_items = {name: self.lr_plot.plot(pen=_pen(PALETTE[i % len(PALETTE)]), name=name, **DENSE)
                         for i, name in enumerate(lr_names)}
        self.level_steps = {name: GrowingArray() for name in self.levels}
        self.level_items = {}
        for i, name in enumerate(self.levels):
            chunk = f" (every {chunk_sizes[i]})" if chunk_sizes else ""
            # one short vertical line per step, drawn as line pairs: thousands of them stay cheap to
            # repaint, where as many scatter symbols slowed every redraw of a long run
            # (1-pixel lines without antialiasing: crisp, even, and the cheapest line Qt draws)
            self.level_items[name] = pg.PlotDataItem(pen=_pen(PALETTE[i % len(PALETTE)], 255, 1.0), connect="pairs",
                                                     name=f"{name}{chunk}", antialias=False)
            self.steps_plot.addItem(self.level_items[name])
        axis = self.steps_plot.getAxis("left")
        axis.setTicks([[(i, name) for i, name in enumerate(self.levels)]])
        self.follow.fixed_y[self.steps_plot] = (-0.6, max(0.6, len(self.levels) - 0.4))
        self.follow.restart()
        self.steps_plot.setLabel("left", "level")
        self.steps_plot.legend.setVisible(False)

    def add_points(self, steps: list[dict], evals: list[dict]) -> None:
        if not steps and not evals:
            return
        for event in steps:
            x = float(event["step"])
            self.loss_series["total"].append(x, float(event["loss"]))
            for pair, value in (event.get("pair_losses") or {}).items():
                if pair in self.loss_series:
                    self.loss_series[pair].append(x, float(value))
            for name, value in (event.get("lrs") or {}).items():
                if name not in self.lr_series:
                    continue
                self.lr_series[name].append(x, float(value))
            for name in event.get("stepped_levels") or []:
                if name in self.level_steps:
                    self.level_steps[name].append(x)
        for event in evals:
            for direction, values in event["recall"].items():
                if direction in self.recall_series:
                    self.recall_series[direction].append(float(event["step"]), 100.0 * float(values["R@1"]))
        self.redraw(recall=bool(evals))

    def redraw(self, recall: bool = True) -> None:
        if not self.in_view:        # another panel's tab is in front: draw once this one is back
            self._stale = True
            return
        self._stale = False
        for name, series in self.loss_series.items():
            raw, smooth = self.loss_items[name]
            if len(series):
                x = series.x.view()
                raw.setData(x, series.y.view())
                smooth.setData(x, series.smooth.view())
        for name, series in self.recall_series.items() if recall else ():
            if len(series):
                self.recall_items[name].setData(series.x.view(), series.y.view())
        for name, series in self.lr_series.items():
            if len(series):
                self.lr_items[name].setData(series.x.view(), series.y.view())
        total = self.loss_series["total"]
        if len(total):
            self.follow.update(total.x.view()[0], total.x.view()[-1], self.total_steps or None,
                               {self.loss_plot: _union(s.bounds() for s in self.loss_series.values()),
                                self.lr_plot: _union(s.bounds() for s in self.lr_series.values())})
        self._draw_level_steps()
        self.redraws += 1

    def set_in_view(self, in_view: bool) -> None:
        """Whether the panel can be seen (its dock's tab is in front); the main window tells it."""
        self.in_view = in_view
        if in_view and self._stale:
            self.redraw()

    def _draw_level_steps(self) -> None:
        """One short vertical line per step a level took, at most one per pixel column of the view."""
        (x0, x1), pixels = self.steps_plot.vb.viewRange()[0], self.steps_plot.vb.width()
        for i, name in enumerate(self.levels):
            xs = one_per_pixel(self.level_steps[name].view(), x0, x1, pixels)
            ys = np.tile(np.array([i - 0.3, i + 0.3]), len(xs))
            self.level_items[name].setData(np.repeat(xs, 2), ys)

    def curve_points(self) -> dict:
        """How many points each curve holds (for tests and the bench)."""
        return {"loss": {k: len(s) for k, s in self.loss_series.items()},
                "recall": {k: len(s) for k, s in self.recall_series.items()},
                "lr": {k: len(s) for k, s in self.lr_series.items()},
                "level_steps": {k: len(a) for k, a in self.level_steps.items()}}

    def _smoothing_changed(self, value: int) -> None:
        weight = value / 100
        self.smoothing_label.setText(f"Smoothing {weight:.2f}")
        for series in self.loss_series.values():
            series.set_weight(weight)
        self.redraw()

    def _log_changed(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        self.follow.forget_y(self.loss_plot)
        self.redraw()

    # ------------------------------------------------------------------ run history
    def refresh_runs(self, select: str | None = None) -> None:
        self.runs.clear()
        self._running_item = None
        if not self.runs_dir.is_dir():
            return
        selected = Path(select).resolve() if select else None
        running = Path(self.current_out_dir).resolve() \
            if self.current_out_dir and self.state in ("running", "paused", "stopping") else None
        folders = sorted((p for p in self.runs_dir.iterdir() if p.is_dir()
                          and ((p / "metrics.jsonl").exists() or (p / "checkpoint.pt").exists())), reverse=True)
        for folder in folders:
            summary = run_summary(folder)
            item = QListWidgetItem(f"{folder.name}\n   {summary}")
            item.setData(Qt.UserRole, str(folder))
            item.setToolTip(str(folder))
            self.runs.addItem(item)
            where = folder.resolve()
            if where == selected:
                self.runs.setCurrentItem(item)
            if where == running:
                self._running_item = item

    def _selected_run(self) -> str | None:
        item = self.runs.currentItem()
        return item.data(Qt.UserRole) if item else None

    def _show_selected_run(self) -> None:
        run = self._selected_run()
        if run:
            self.show_run(run)

    def show_run(self, folder: str) -> None:
        if self.state != "idle":
            self.message.emit("Curves of another run can be shown once training stops")
            return
        steps, evals, levels = read_metrics(Path(folder))
        self.total_steps = steps[-1].get("total_steps", 0) if steps else 0
        self.clear_curves(levels)
        self.add_points(steps, evals)
        self.current_out_dir = folder
        last = steps[-1]["step"] if steps else 0
        self.progress.setRange(0, max(1, self.total_steps))
        self.progress.setValue(last)
        self.rate_label.setText(f"Showing {Path(folder).name}")

    def _load_selected(self) -> None:
        run = self._selected_run() or self.current_out_dir
        checkpoint = Path(run) / "checkpoint.pt" if run else None
        if checkpoint is None or not checkpoint.exists():
            self.message.emit("No checkpoint in the selected run yet")
            return
        self.load_checkpoint_requested.emit(str(checkpoint))


def _union(bounds) -> tuple[float, float] | None:
    found = [b for b in bounds if b is not None]
    return (min(b[0] for b in found), max(b[1] for b in found)) if found else None


def read_metrics(folder: Path) -> tuple[list[dict], list[dict], list[str]]:
    """metrics.jsonl -> (step events, eval events, level names) — a bad line is skipped, not fatal."""
    steps, evals, levels = [], [], []
    path = folder / "metrics.jsonl"
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("kind") == "step":
                # a run resumed from its last checkpoint repeats the steps after it: the newest count
                while steps and steps[-1]["step"] >= event["step"]:
                    steps.pop()
                steps.append(event)
                for name in event.get("lrs", {}):
                    if name != "outer" and name not in levels:
                        levels.append(name)
            elif event.get("kind") == "eval":
                while evals and evals[-1]["step"] >= event["step"]:
                    evals.pop()
                evals.append(event)
    return steps, evals, levels


SUMMARY_SCAN_BYTES = 4 << 20   # how far back from its end a run's metrics are searched for a summary


def last_events(path: Path, kinds: tuple[str, ...] = ("step", "eval"), chunk: int = 1 << 16) -> dict[str, dict]:
    """The last event of each kind in a metrics file, read backwards a chunk at a time: the run history
    lists every run at start-up and a long run's file holds hundreds of thousands of lines (reading them
    all took about a second per 100 000 steps, on the UI thread). Searches SUMMARY_SCAN_BYTES at most."""
    found: dict[str, dict] = {}
    try:
        handle = path.open("rb")
    except OSError:
        return found
    with handle:
        pos = handle.seek(0, 2)
        scanned, carry = 0, b""
        while pos > 0 and len(found) < len(kinds) and scanned < SUMMARY_SCAN_BYTES:
            size = min(chunk, pos)
            pos -= size
            scanned += size
            handle.seek(pos)
            lines = (handle.read(size) + carry).split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""    # maybe the end of a line that starts further back
            for line in reversed(lines):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                kind = event.get("kind") if isinstance(event, dict) else None
                if kind in kinds and kind not in found:
                    found[kind] = event
    return found


def step_summary(event: dict) -> str:
    return f"{event['step']}/{event.get('total_steps', '?')} steps, loss {event['loss']:.3f}"


def run_summary(folder: Path) -> str:
    last = last_events(folder / "metrics.jsonl")
    step, evaluation = last.get("step"), last.get("eval")
    parts = []
    if step:
        parts.append(step_summary(step))
    if evaluation:
        best = max((v["R@1"] for v in evaluation["recall"].values()), default=0.0)
        parts.append(f"best R@1 {100 * best:.0f}%")
    if not (folder / "checkpoint.pt").exists():
        parts.append("no checkpoint")
    return ", ".join(parts) or "empty"
