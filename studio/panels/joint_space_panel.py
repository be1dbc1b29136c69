"""The joint space: every gallery item (image, caption, spoken clip) as a point of a 2-D map of the model's
joint embedding space, coloured by label ("Colour by label"; off: by modality), each modality its own
shape; the last query as a star with lines to its top-k. With "Adapt memory" on, the star moves as the
memory learns; a new model or gallery redraws the map.

The map comes in two steps (`engine/joint_space.py`): PCA at once, from the engine thread, then (with
"Neighbourhood map" on) a t-SNE layout that keeps each item's neighbours near it, computed on the files
thread with its progress in the status line while queries go on; it replaces the PCA view when done.
This panel only draws: one `ScatterPlotItem` a modality, made once and fed with `setData`. Behind its tab
it draws nothing and asks for no map; back in front it catches up. Hover shows an item; a click on a clip
plays it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.vocabulary import MODALITIES
from studio.panels.results_view import MODALITY_TITLES

COLORS = dict(zip(MODALITIES, ("#ff7f0e", "#1f77b4", "#2ca02c")))     # one colour a modality
SYMBOLS = dict(zip(MODALITIES, ("s", "o", "t")))    # and one shape, so that colouring by label keeps them apart
QUERY_COLOR = "#d62728"


def _brush(color: str, alpha: int = 150):
    qcolor = pg.mkColor(color)
    qcolor.setAlpha(alpha)
    return pg.mkBrush(qcolor)


class JointSpacePanel(QWidget):
    message = Signal(str)
    play_requested = Signal(str)        # a spoken clip clicked on the map

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("jointSpacePanel")
        self.session = None
        self.map = None                 # the JointMap drawn (engine.events)
        self.answer = None              # the last QueryAnswer, drawn as the star
        self.in_view = True
        self.stale = True               # the map must be asked for again (a new model or gallery)
        self.mapping = None             # the task computing the map, while it does
        self.laying_out = None          # the task computing the t-SNE map, while it does
        self.pca_map = None             # the PCA map of the gallery (JointMap), drawn first
        self.tsne_map = None            # its t-SNE layout, once computed
        self._drawn = None              # the map the scatter items hold
        self._label_brushes: dict = {}
        self.draws = 0                  # maps drawn
        self.query_draws = 0            # stars (and their lines) drawn

        self._make_plot()

        self.status = QLabel("No map yet: load a model and its gallery")
        self.status.setObjectName("jointSpaceStatus")
        self.status.setWordWrap(True)
        self.redraw_button = QPushButton("Redraw map")
        self.redraw_button.setToolTip("Project the gallery again with the model as it is now")
        self.redraw_button.clicked.connect(lambda: self.gallery_changed())
        self.by_label = QCheckBox("Colour by label")
        self.by_label.setObjectName("colourByLabel")
        self.by_label.setToolTip("One colour a label (a number), whatever the modality: are the image, the "
                                 "caption and the clip of a number near each other?")
        self.by_label.setChecked(True)
        self.by_label.toggled.connect(lambda _on: (setattr(self, "_drawn", None), self.draw()))
        self.neighbourhood = QCheckBox("Neighbourhood map")
        self.neighbourhood.setObjectName("neighbourhoodMap")
        self.neighbourhood.setToolTip("Lay the map out by t-SNE, which keeps each item's nearest neighbours near it "
                                      "(seconds; PCA is shown meanwhile). Off: the two principal directions")
        self.neighbourhood.setChecked(True)
        self.neighbourhood.toggled.connect(self._method_toggled)
        self.info = QLabel("Hover a point to see the item; click a spoken clip to play it")
        self.info.setObjectName("jointSpaceInfo")
        self.info.setTextFormat(Qt.RichText)
        self.info.setWordWrap(True)
        self.thumbnail = QLabel()
        self.thumbnail.setFixedHeight(48)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.by_label)
        top.addWidget(self.neighbourhood)
        top.addWidget(self.redraw_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.thumbnail)
        bottom.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.plot_widget, 1)
        layout.addLayout(bottom)

    def _make_plot(self) -> None:
        """The plot: one scatter item a modality (its own symbol), the query's star and its dashed lines."""
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setObjectName("jointSpacePlot")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLabel("bottom", "first principal direction")
        self.plot.setLabel("left", "second principal direction")
        self.plot.setAspectLocked(True)
        for side in ("bottom", "left"):     # "800 (x0.001)" reads worse than 0.8
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        legend = self.plot.addLegend(offset=(10, 10), labelTextSize="9pt")
        self.scatter = {}
        for modality in MODALITIES:
            item = pg.ScatterPlotItem(size=7, pen=None, brush=_brush(COLORS[modality]), symbol=SYMBOLS[modality],
                                      hoverable=True,
                                      hoverSize=12, hoverPen=pg.mkPen("k", width=1.5),
                                      name=MODALITY_TITLES[modality], tip=None)
            # kept as a pixmap: a query repaints the star over it instead of 10 000 points (10 against 25 ms)
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            item.sigHovered.connect(self._hovered)
            item.sigClicked.connect(self._clicked)
            self.plot.addItem(item)
            self.scatter[modality] = item
        self.lines = pg.PlotDataItem(connect="pairs", pen=pg.mkPen(QUERY_COLOR, width=1.2, style=Qt.DashLine))
        self.query_item = pg.ScatterPlotItem(symbol="star", size=22, brush=pg.mkBrush(QUERY_COLOR),
                                             pen=pg.mkPen("k", width=1))
        # the star does not move the view: a query redraws the star and its lines, not the axes and the
        # 10 000 points of a big gallery (a grid, drawn by the axes across the view, cost ~13 ms a query)
        self.plot.addItem(self.lines, ignoreBounds=True)
        self.plot.addItem(self.query_item, ignoreBounds=True)
        legend.addItem(self.query_item, "query, lines to its top k")

    def attach(self, session) -> None:
        self.session = session

    # ------------------------------------------------------------------ the map
    def model_changed(self, what: str) -> None:
        """A model is loading: the map drawn (or being computed) no longer holds."""
        if self.mapping is not None:
            self.mapping.cancel()
            self.mapping = None
        self._stop_layout()
        self.map, self.pca_map, self.tsne_map, self.answer, self.stale = None, None, None, None, True
        self._clear()
        self.status.setText(what)

    def gallery_changed(self) -> None:
        """A new gallery (or model) is embedded, or "Redraw map": ask for the map again when it can be seen."""
        self._stop_layout()
        self.stale = True
        if self.in_view:
            self.request_map()

    def request_map(self) -> None:
        if self.session is None or self.mapping is not None:
            return
        self.stale = False
        self.status.setText("Projecting the gallery…")
        self.mapping = task = self.session.joint_map()
        task.result.connect(lambda joint_map: self.mapping is task and self.show_map(joint_map))
        task.error.connect(lambda message: (self.status.setText(f"No map: {message}"), self.message.emit(message)))
        task.finished.connect(lambda: self._map_done(task))

    def _map_done(self, task) -> None:
        if self.mapping is not task:        # a map of a model that was replaced meanwhile
            return
        self.mapping = None
        if self.stale and self.in_view:     # the gallery changed again while this map was computed
            self.request_map()

    def show_map(self, joint_map) -> None:
        """A JointMap (engine.events) to draw, now or once the panel is in front. A PCA map is followed by
        its t-SNE layout when "Neighbourhood map" is on."""
        if joint_map.method == "pca":
            if joint_map is not self.pca_map:    # a new gallery's: its layout is still to come
                self.pca_map, self.tsne_map = joint_map, None
        else:
            self.tsne_map = joint_map
        self.map = joint_map
        self.status.setText(self._describe_map(joint_map))
        pca = joint_map.method == "pca"
        self.plot.setLabel("bottom", "first principal direction" if pca else "t-SNE 1")
        self.plot.setLabel("left", "second principal direction" if pca else "t-SNE 2")
        self.draw()
        if pca and self.neighbourhood.isChecked():
            self.request_layout()

    def _describe_map(self, joint_map) -> str:
        counts = {m: int((joint_map.modalities == i).sum()) for i, m in enumerate(MODALITIES)}
        parts = [f"{n} {MODALITY_TITLES[m].lower()}" for m, n in counts.items() if n]
        if joint_map.method == "pca":
            first, second = (100 * v for v in joint_map.explained)
            return (f"{len(joint_map.points)} points ({', '.join(parts)}): the gallery's embeddings on their two "
                    f"principal directions ({first:.0f} % and {second:.0f} % of the variance)")
        return (f"{len(joint_map.points)} points ({', '.join(parts)}): a t-SNE layout, each item near its nearest "
                "neighbours in the joint space (distances between groups mean little)")

    def request_layout(self) -> None:
        """The t-SNE layout of the PCA map drawn, on the files thread, its progress in the status line."""
        if self.session is None or self.pca_map is None or self.laying_out is not None:
            return
        base = self.pca_map
        self.laying_out = task = self.session.neighbourhood_map(base)
        described = self._describe_map(base)
        task.progress.connect(lambda done, total: self.laying_out is task and self.status.setText(
            f"{described}. Laying out neighbourhoods (t-SNE)… {100 * done / max(total, 1):.0f} %"))
        task.result.connect(lambda joint_map: self.laying_out is task and self.pca_map is base
                            and self.neighbourhood.isChecked() and self.show_map(joint_map))
        task.error.connect(lambda message: self.laying_out is task and (
            self.status.setText(f"{described}. No neighbourhood map: {message}"), self.message.emit(message)))
        task.finished.connect(lambda: self.laying_out is task and setattr(self, "laying_out", None))

    def _stop_layout(self) -> None:
        if self.laying_out is not None:
            self.laying_out.cancel()
            self.laying_out = None

    def _method_toggled(self, on: bool) -> None:
        if on:
            if self.tsne_map is not None:
                self.show_map(self.tsne_map)
            elif self.pca_map is not None:
                self.request_layout()
        else:
            self._stop_layout()
            if self.pca_map is not None:
                self.show_map(self.pca_map)

    def set_in_view(self, in_view: bool) -> None:
        self.in_view = in_view
        if not in_view:
            return
        if self.stale:
            self.request_map()
        else:
            self.draw()

    def draw(self) -> None:
        if not self.in_view or self.map is None:
            return
        if self._drawn is not self.map:     # points change only with the map
            for code, modality in enumerate(MODALITIES):
                rows = np.flatnonzero(self.map.modalities == code)
                brush = ([self._label_brush(int(label)) for label in self.map.labels[rows]]
                         if self.by_label.isChecked() else _brush(COLORS[modality]))
                self.scatter[modality].setData(pos=self.map.points[rows], data=rows, brush=brush)
            self._drawn = self.map
            self.plot.enableAutoRange()
        self._draw_query()
        self.draws += 1

    def _label_brush(self, label: int):
        """Labels spread round the colour wheel by the golden ratio (neighbouring numbers differ); none: grey."""
        if label not in self._label_brushes:
            color = pg.hsvColor((label * 0.618034) % 1.0, 0.75, 0.9) if label >= 0 else pg.mkColor("#999999")
            color.setAlpha(170)
            self._label_brushes[label] = pg.mkBrush(color)
        return self._label_brushes[label]

    def _clear(self) -> None:
        for item in (*self.scatter.values(), self.query_item, self.lines):
            item.setData([], [])
        self._drawn = None

    # ------------------------------------------------------------------ queries
    def show_query(self, answer) -> None:
        """A QueryAnswer: the star where its embedding lands, lines to its hits."""
        self.answer = answer
        if self.in_view and self.map is not None:
            self._draw_query()

    def query_position(self) -> np.ndarray | None:
        if self.answer is None or self.answer.embedding is None or self.map is None:
            return None
        if self.answer.embedding.shape != self.map.mean.shape:  # an answer of another model than the map's
            return None
        return self.map.place(self.answer.embedding)

    def _draw_query(self) -> None:
        where = self.query_position()
        if where is None:
            self.query_item.setData([], [])
            self.lines.setData([], [])
            return
        self.query_item.setData(pos=where[None])
        rows = [self.map.row_of(hit) for hits in self.answer.results.values() for hit in hits]
        ends = self.map.points[[r for r in rows if r is not None]]
        pairs = np.empty((2 * len(ends), 2), dtype=np.float32)
        pairs[0::2], pairs[1::2] = where, ends
        self.lines.setData(pairs[:, 0], pairs[:, 1])
        self.query_draws += 1

    # ------------------------------------------------------------------ hover and click
    def describe(self, row: int) -> str:
        modality = MODALITIES[int(self.map.modalities[row])]
        name, label = self.map.names[row], int(self.map.labels[row])
        shown = name if modality == "text" else f"{Path(name).parent.name}/{Path(name).name}"
        tag = f" · label {label}" if label >= 0 else ""
        return f"<b>{MODALITY_TITLES[modality][:-1]}</b>{tag}: {shown.replace('<', '&lt;')}"

    def _hovered(self, item, points, _event) -> None:
        if self.map is None or len(points) == 0:
            return
        row = int(points[0].data())
        self.info.setText(self.describe(row))
        name = self.map.names[row]
        pixmap = QPixmap(name) if MODALITIES[int(self.map.modalities[row])] == "image" else QPixmap()
        self.thumbnail.setPixmap(pixmap.scaledToHeight(44, Qt.SmoothTransformation) if not pixmap.isNull()
                                 else QPixmap())

    def _clicked(self, item, points, _event) -> None:
        if self.map is None or len(points) == 0:
            return
        row = int(points[0].data())
        if MODALITIES[int(self.map.modalities[row])] == "audio":
            self.play_requested.emit(self.map.names[row])
        else:
            self._hovered(item, points, _event)
