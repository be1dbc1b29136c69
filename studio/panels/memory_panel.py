"""Memory: the central memory's slots as a heatmap, each slot's change since the last reset, the slots the
last query wrote, the audio domain memory's stream domains, how far the HOPE projections, the fast CMS
level and the user's corrections moved the weights (each learner in its own colour), the corrections held
(each one removable), and a replay slider over the recent frames.

Frames (`engine.events.MemoryFrame`) arrive from the retrieval session after each load, query and reset,
and from a training run (≤ 30 a second); every frame is kept for the replay slider, but the view redraws at most 30 times a second, showing the newest frame,
however fast queries stream. The image item is made once and redrawn with `setImage(autoLevels=False)`
so the colour scale stays put and a change in the slots reads as a change in colour.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from studio.panels.corrections_list import CorrectionsList

HISTORY = 300
DRAW_INTERVAL_S = 1 / 30  # the most often the view redraws
WRITE_COLOR = "#ff7f0e"
BAR_COLOR = "#1f77b4"
WEIGHT_COLORS = {"projections": "#2ca02c", "fast level": "#9467bd", "corrections": "#d62728"}


class MemoryPanel(QWidget):
    reset_requested = Signal()
    forget_requested = Signal(int)      # the index of a correction to drop

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("memoryPanel")
        self.frames: deque = deque(maxlen=HISTORY)
        self.frames_drawn = 0
        self._fps_times: deque[float] = deque(maxlen=30)
        self._levels: tuple[float, float] | None = None
        self._shape: tuple[int, int] | None = None
        self.shown = None       # the MemoryFrame drawn
        self.in_view = True
        self._last_draw = 0.0
        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.timeout.connect(self._draw_newest)

        self.source_label = QLabel("No memory to show yet: load a model or start training")
        self.source_label.setObjectName("memorySource")
        self.fps_label = QLabel("")
        self.reset_button = QPushButton("Reset memory")
        self.reset_button.setToolTip("Restore the retrieval model as loaded: its trained slots and weights, "
                                     "every correction dropped")
        self.reset_button.clicked.connect(self.reset_requested)
        top = QHBoxLayout()
        top.addWidget(self.source_label, 1)
        top.addWidget(self.fps_label)
        top.addWidget(self.reset_button)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("memoryPlots")
        self.plots.setAntialiasing(False)   # cells, bars and axes: crisp without it, and each frame paints faster
        self._make_slot_plots()
        self._make_domain_plot()
        self._bar_top = 0.0
        self._bar_brush, self._write_brush = pg.mkBrush(BAR_COLOR), pg.mkBrush(WRITE_COLOR)
        self._make_weight_plot()
        for row, stretch in enumerate((3, 2, 2, 2)):
            self.plots.ci.layout.setRowStretchFactor(row, stretch)
        self.domain_label = QLabel("")
        self.domain_label.setObjectName("domainSummary")
        self.domain_label.setWordWrap(True)
        legend = QLabel(f"<span style='color:{WRITE_COLOR}'>▶ / orange bars</span>: slots the last query wrote")

        replay_row = self._make_replay_row()

        self.corrections = CorrectionsList()
        self.corrections.forget_requested.connect(self.forget_requested)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.corrections)
        layout.addWidget(legend)
        layout.addWidget(self.domain_label)
        layout.addLayout(replay_row)

    def _make_slot_plots(self) -> None:
        """The slots' values as a heat map (with the slots the last query wrote) and their change as bars."""
        self.heat_plot = self.plots.addPlot(row=0, col=0, title="Memory slots (value per dimension)")
        self.heat_plot.setLabel("bottom", "dimension")
        self.heat_plot.setLabel("left", "slot")
        self.heat_plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat_plot.addItem(self.image)
        self.colormap = pg.colormap.get("CET-D1")
        self.image.setColorMap(self.colormap)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=self.colormap, label="slot value",
                                        interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.heat_plot)
        self.written = pg.ScatterPlotItem(symbol="t2", size=11, pen=pg.mkPen("k", width=0.5),
                                          brush=pg.mkBrush(WRITE_COLOR))
        self.heat_plot.addItem(self.written)

        self.bar_plot = self.plots.addPlot(row=1, col=0, title="Change of each slot since the last reset (L2 norm)")
        self.bar_plot.setLabel("bottom", "slot")
        self.bar_plot.setLabel("left", "‖Δ slot‖")
        self.bar_plot.showGrid(y=True, alpha=0.25)
        self.bar_plot.getAxis("left").setStyle(maxTickLevel=0)  # major grid lines only: cheaper repaints
        self.bar_plot.getAxis("left").enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.8, brush=BAR_COLOR)
        self.bar_plot.addItem(self.bars)

    def _make_domain_plot(self) -> None:
        """The audio domain memory's stream domains (audio queries adapt there, not in the slots)."""
        # Audio queries adapt through the audio domain memory (per-bin statistics of new acoustic
        # domains), not the central slots: its stream domains are drawn here.
        self.domain_plot = self.plots.addPlot(row=2, col=0, title="Audio domain memory: level offset of each "
                                              "stream domain from the training audio (per mel bin)")
        self.domain_plot.setLabel("bottom", "mel bin")
        self.domain_plot.setLabel("left", "domain")
        self.domain_plot.invertY(True)
        self.domain_image = pg.ImageItem(axisOrder="row-major")
        self.domain_plot.addItem(self.domain_image)
        self.domain_colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=self.colormap, label="offset (log-mel)",
                                               interactive=False, width=12)
        self.domain_colorbar.setImageItem(self.domain_image, insert_in=self.domain_plot)
        self._domain_bound = 1.0
        self._domain_shape: tuple[int, int] | None = None
        self._domains_drawn: object = ()    # what the domain view shows (`_domains_key`); () before the first frame

    def _make_weight_plot(self) -> None:
        """How far HOPE's projections, the fast CMS level and corrections moved each block's weights."""
        # HOPE's self-modifying projections and the fast CMS level learn from queries too (when chosen):
        # how far each block's weights moved, relative to their trained size.
        self.weight_plot = self.plots.addPlot(row=3, col=0, title="Projections (HOPE, green), fast CMS level "
                                              "(purple) and corrections (red): relative change since the last reset")
        self.weight_plot.setLabel("left", "‖ΔW‖ / ‖W‖")
        self.weight_plot.getAxis("left").enableAutoSIPrefix(False)
        self.weight_bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.8)
        self.weight_plot.addItem(self.weight_bars)
        self._weight_labels: tuple[str, ...] = ()
        self._weight_heights = np.zeros(0)
        self._weight_top = 0.0
        self.weight_plot.setMouseEnabled(False, False)
        self._weight_brushes: list = []
        self._group_brushes = {group: pg.mkBrush(color) for group, color in WEIGHT_COLORS.items()}

    def _make_replay_row(self) -> QHBoxLayout:
        """The replay slider over the recent frames, and "Live" (follow the newest)."""
        self.replay = QSlider(Qt.Horizontal)
        self.replay.setObjectName("replaySlider")
        self.replay.setRange(0, 0)
        self.replay.setToolTip("Replay the recent memory frames")
        self.replay.valueChanged.connect(self._replay_moved)
        self.live = QCheckBox("Live")
        self.live.setChecked(True)
        self.live.setToolTip("Follow the newest frame")
        self.live.toggled.connect(lambda on: on and self.frames and self.replay.setValue(len(self.frames) - 1))
        self.frame_label = QLabel("")
        replay_row = QHBoxLayout()
        replay_row.addWidget(QLabel("Replay:"))
        replay_row.addWidget(self.replay, 1)
        replay_row.addWidget(self.frame_label)
        replay_row.addWidget(self.live)
        return replay_row

    # ------------------------------------------------------------------ input
    def add_frame(self, frame) -> None:
        """A MemoryFrame: kept for the replay; drawn when the view follows the newest and can be seen."""
        self.frames.append(frame)
        self.replay.blockSignals(True)
        self.replay.setRange(0, len(self.frames) - 1)
        if self.live.isChecked():
            self.replay.setValue(len(self.frames) - 1)
        self.replay.blockSignals(False)
        if self.live.isChecked() and self.in_view:
            wait = self._last_draw + DRAW_INTERVAL_S - time.perf_counter()
            if wait <= 0:
                self._draw_newest()
            elif not self._draw_timer.isActive():
                self._draw_timer.start(int(wait * 1000) + 1)

    def set_in_view(self, in_view: bool) -> None:
        """Whether the panel can be seen (its dock's tab is in front): frames are kept either way, but
        drawn only when they can be seen; back in view, the newest is drawn."""
        self.in_view = in_view
        if in_view:
            self._draw_newest()

    def _draw_newest(self) -> None:
        if self.live.isChecked() and self.frames:
            self.show_frame(len(self.frames) - 1)

    def _replay_moved(self, index: int) -> None:
        if index != len(self.frames) - 1 and self.live.isChecked():
            self.live.blockSignals(True)
            self.live.setChecked(False)
            self.live.blockSignals(False)
        self.show_frame(index)

    # ------------------------------------------------------------------ drawing
    def show_frame(self, index: int) -> None:
        if not 0 <= index < len(self.frames):
            return
        frame = self.frames[index]
        slots = frame.slots
        if self._shape != slots.shape or self._levels is None:
            bound = float(np.abs(slots).max()) or 1.0
            self._levels = (-bound, bound)
            self._shape = slots.shape
            self.colorbar.setLevels(self._levels)
            self.heat_plot.setRange(xRange=(0, slots.shape[1]), yRange=(0, slots.shape[0]), padding=0.02)
            self.bar_plot.setXRange(-0.5, slots.shape[0] - 0.5)
        self.image.setImage(slots, autoLevels=False, levels=self._levels)
        written = np.asarray(frame.written)
        self.written.setData(x=np.full(len(written), -0.8), y=written.astype(float) + 0.5)
        n = len(frame.change)
        hit = set(written.tolist())
        brushes = [self._write_brush if i in hit else self._bar_brush for i in range(n)]
        self.bars.setOpts(x=np.arange(n), height=frame.change, width=0.8, brushes=brushes)
        self._bar_top = _follow_top(self.bar_plot, self._bar_top, frame.change)
        self._draw_domains(frame.audio_domains)
        moved = dict(frame.weights_moved or {})
        if frame.corrections is not None and frame.corrections.moved:
            moved["corrections"] = {f"{m} {where}": v for m, wheres in frame.corrections.moved.items()
                                    for where, v in wheres.items()}
        self._draw_weights(moved)
        if frame.source == "retrieval":     # a training run's frames say nothing of the corrections
            self.corrections.show_held(frame.corrections)
        self.shown = frame
        self.frames_drawn += 1
        now = time.perf_counter()
        self._last_draw = now
        self._fps_times.append(now)
        recent = [t for t in self._fps_times if now - t <= 1.0]
        self.fps_label.setText(f"{len(recent)} frames/s" if len(recent) >= 3 else "")
        if frame.source == "training":
            what = f"Training model, step {frame.step} — change since this run started"
        else:
            what = f"Retrieval model — {frame.write_count} test-time writes since the last reset"
        self.source_label.setText(what)
        self.frame_label.setText(f"frame {index + 1}/{len(self.frames)}")

    def _draw_domains(self, described: dict | None) -> None:
        drawn = _domains_key(described)
        if drawn == self._domains_drawn:    # a text or image query leaves the audio domains as they were
            return
        self._domains_drawn = drawn
        if not described:
            self.domain_image.clear()
            self.domain_label.setText("Audio domain memory: shown for the retrieval model (audio queries "
                                      "with “Adapt memory” on open stream domains for new recording conditions)")
            return
        domains, n_mels = described["domains"], described["n_mels"]
        rows = max(1, described["capacity"])
        offsets = np.zeros((rows, n_mels), dtype=np.float32)
        for i, domain in enumerate(domains[:rows]):
            offsets[i] = domain["offset"]
        bound = float(np.abs(offsets).max()) if domains else 0.0
        if bound > self._domain_bound:  # the scale only grows, so colours stay comparable between frames
            self._domain_bound = bound
            self.domain_colorbar.setLevels((-bound, bound))
        self.domain_image.setImage(offsets, autoLevels=False, levels=(-self._domain_bound, self._domain_bound))
        if self._domain_shape != (rows, n_mels):
            self._domain_shape = (rows, n_mels)
            self.domain_image.setRect(0, 0.5, n_mels, rows)  # row i is stream domain i + 1, as the summary counts
            self.domain_plot.setRange(xRange=(0, n_mels), yRange=(0.5, rows + 0.5), padding=0.02)
        route = described.get("last_route") or []
        if not route:
            last = "no audio query routed yet (routing starts with “Adapt memory” on)"
        elif route[-1] == 0:
            last = "last audio query: training domain (read as trained, untouched)"
        else:
            last = f"last audio query: stream domain {route[-1]}"
        sizes = ", ".join(f"{i + 1}: {d['queries']} queries, {d['distance']:.1f}× threshold"
                          for i, d in enumerate(domains))
        self.domain_label.setText(f"Audio domain memory — {len(domains)} of {rows} stream domains"
                                  f"{' (' + sizes + ')' if sizes else ''}; {last}")

    def _draw_weights(self, moved: dict) -> None:
        bars = [(group, label, value) for group, labels in moved.items() for label, value in labels.items()]
        labels = tuple(label for _, label, _ in bars)
        heights = np.array([value for _, _, value in bars])
        if labels != self._weight_labels:   # the axis and the colours change only with the set of bars
            self._weight_labels = labels
            self.weight_plot.getAxis("bottom").setTicks([list(enumerate(labels))])
            self.weight_plot.setXRange(-0.5, max(len(labels), 1) - 0.5)
            self._weight_brushes = [self._group_brushes[group] for group, _, _ in bars]
        elif np.array_equal(heights, self._weight_heights):
            return
        self._weight_heights = heights
        self._weight_top = _follow_top(self.weight_plot, self._weight_top, heights)
        self.weight_bars.setOpts(x=np.arange(len(bars)), height=heights, width=0.8, brushes=self._weight_brushes)

    def weights_shown(self) -> dict[str, float]:
        """The bars drawn: {label: relative change} (what a viewer reads off the projections/levels view)."""
        return dict(zip(self._weight_labels, [float(h) for h in self._weight_heights]))

    def total_change(self) -> float:
        return float(self.shown.change.sum()) if self.shown else 0.0


def _domains_key(described: dict | None) -> tuple | None:
    """What the domain view shows, in a form cheap to compare: a domain's offset changes only with its
    queries."""
    if not described:
        return None
    return (described["capacity"], described["n_mels"], tuple(described.get("last_route") or [])[-1:],
            tuple((d["queries"], d["frames"], round(d["distance"], 6)) for d in described["domains"]))


def _follow_top(plot, top: float, heights: np.ndarray) -> float:
    """The y scale of a bar plot moves only when its bars outgrow it or shrink below half of it: a new
    scale every frame would regenerate the axis and repaint the whole plot 30 times a second."""
    tallest = max(float(heights.max()) if len(heights) else 0.0, 1e-3)
    if 0.5 * top <= tallest <= top:
        return top
    plot.setYRange(0, tallest * 1.25, padding=0)
    return tallest * 1.25
