"""The training curves: loss per pair, recall@1 per direction, when each CMS level stepped, learning rates.

Plot items are made once; every update (≤ 30 a second) appends the new steps to growing numpy arrays
(`studio.curves`) and calls `setData` once per curve. The loss curves are smoothed with TensorBoard's
debiased moving average, the raw curve drawn faintly behind. The views follow the run without
pyqtgraph's per-update auto-range (`studio/plot_range.py`).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from engine.vocabulary import DIRECTION_NAMES, PAIR_NAMES
from studio.curves import GrowingArray, Series, one_per_pixel
from studio.plot_range import FollowRange

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
LEFT_AXIS_PX = 66
# A curve of thousands of steps is drawn from its envelope (min and max per pixel column, pyqtgraph's
# "peak" downsampling): the same picture as every point, at a fraction of the antialiased drawing.
DENSE = {"autoDownsampleFactor": 1.0}


def _pen(color: str, alpha: int = 255, width: float = 1.6):
    qcolor = pg.mkColor(color)
    qcolor.setAlpha(alpha)
    return pg.mkPen(qcolor, width=width)


def _union(bounds) -> tuple[float, float] | None:
    found = [b for b in bounds if b is not None]
    return (min(b[0] for b in found), max(b[1] for b in found)) if found else None


class TrainingCurves(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.total_steps = 0            # the run's last step, when known: the x axis grows up to it
        self.in_view = True
        self._stale = False             # curves gained points while the panel was hidden
        self.redraws = 0

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
        controls = QHBoxLayout()
        controls.addWidget(self.smoothing_label)
        controls.addWidget(self.smoothing, 1)
        controls.addWidget(self.log_y)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plots, 1)
        layout.addLayout(controls)

        self.clear([])
        # the level markers are thinned to the pixels of the view: redone when it pans, zooms or resizes
        self.steps_plot.vb.sigXRangeChanged.connect(lambda *_: self._draw_level_steps())
        self.steps_plot.vb.sigResized.connect(lambda *_: self._draw_level_steps())

    # ------------------------------------------------------------------ data
    def clear(self, levels, chunk_sizes=None) -> None:
        """Empty curves for a run with these CMS levels (and their chunk sizes, for the legend)."""
        for plot in (self.loss_plot, self.recall_plot, self.steps_plot, self.lr_plot):
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        weight = self.smoothing.value() / 100
        names = ("total",) + PAIR_NAMES
        self.loss_series = {name: Series(weight) for name in names}
        self.loss_items = {}
        for i, name in enumerate(names):
            color = "#888888" if name == "total" else PALETTE[i - 1]
            raw = self.loss_plot.plot(pen=_pen(color, 60, 1.0), antialias=False, **DENSE)
            smooth = self.loss_plot.plot(pen=_pen(color, 255, 2.0 if name == "total" else 1.6), name=name, **DENSE)
            self.loss_items[name] = (raw, smooth)
        self.recall_series = {d: Series(0.0) for d in DIRECTION_NAMES}
        self.recall_items = {d: self.recall_plot.plot(pen=_pen(PALETTE[i]), symbol="o", symbolSize=5,
                                                      symbolBrush=PALETTE[i], symbolPen=None, name=d)
                             for i, d in enumerate(DIRECTION_NAMES)}
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
        self.steps_plot.getAxis("left").setTicks([[(i, name) for i, name in enumerate(self.levels)]])
        self.follow.fixed_y[self.steps_plot] = (-0.6, max(0.6, len(self.levels) - 0.4))
        self.follow.restart()
        self.steps_plot.legend.setVisible(False)

    def add(self, steps, evaluations=()) -> None:
        """StepMetrics and Evaluations (engine.events) of the run shown, in step order."""
        if not steps and not evaluations:
            return
        for event in steps:
            x = float(event.step)
            self.loss_series["total"].append(x, float(event.loss))
            for pair, value in event.pair_losses.items():
                if pair in self.loss_series:
                    self.loss_series[pair].append(x, float(value))
            for name, value in event.lrs.items():
                if name in self.lr_series:
                    self.lr_series[name].append(x, float(value))
            for name in event.stepped_levels:
                if name in self.level_steps:
                    self.level_steps[name].append(x)
        for event in evaluations:
            for direction, values in event.recall.items():
                if direction in self.recall_series:
                    self.recall_series[direction].append(float(event.step), 100.0 * float(values["R@1"]))
        self.redraw(recall=bool(evaluations))

    def show_history(self, history) -> None:
        """A whole logged run (engine.training.runs.RunHistory)."""
        self.total_steps = history.total_steps
        self.clear(history.levels)
        self.add(history.steps, history.evaluations)

    def curve_points(self) -> dict:
        """How many points each curve holds (for tests and the bench)."""
        return {"loss": {k: len(s) for k, s in self.loss_series.items()},
                "recall": {k: len(s) for k, s in self.recall_series.items()},
                "lr": {k: len(s) for k, s in self.lr_series.items()},
                "level_steps": {k: len(a) for k, a in self.level_steps.items()}}

    # ------------------------------------------------------------------ drawing
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
        """Whether the curves can be seen (their dock's tab is in front)."""
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
