"""Retrieval: query the model with an image (drop, paste, open), a recording, an audio file or text, and
see the top-k of every other modality with thumbnails, captions, scores and a play button.

"Adapt memory" makes each query also write into the central memory (test-time training) — the Memory
panel shows the slots move; "Reset memory" restores the trained slots. "Add to my data set" appends
what was dropped or recorded (with the text box as its caption) to a folder data set.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QMimeData, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from studio import audio_capture
from studio.dialogs import AUDIO_FILTER, CHECKPOINT_FILTER, IMAGE_FILTER
from studio.panels.gallery_picker import GalleryPicker

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}
MODALITY_TITLES = {"image": "Images", "text": "Captions", "audio": "Spoken clips"}
ROWS_INTERVAL_S = 0.1   # answers arriving faster than this (a stream of queries) are shown coalesced


class DropZone(QLabel):
    """Accepts image (or audio) files dragged from a file manager, and raw image data."""

    file_dropped = Signal(str)
    image_dropped = Signal(QImage)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(QSize(220, 110))
        self.setWordWrap(True)
        self.setFrameShape(QFrame.StyledPanel)
        self.setStyleSheet("#dropZone { border: 2px dashed palette(mid); border-radius: 6px; padding: 6px; }")
        self.show_hint()

    def show_hint(self) -> None:
        self.setPixmap(QPixmap())
        self.setText("Drop an image here\n(or an audio file)\npaste with Ctrl+V, or Open…")

    def show_image(self, image: QImage) -> None:
        if image.isNull():
            return self.show_hint()
        pixmap = QPixmap.fromImage(image).scaled(self.width() - 16, self.height() - 16,
                                                Qt.KeepAspectRatio, Qt.SmoothTransformation)
        self.setPixmap(pixmap)

    @staticmethod
    def _accepts(mime: QMimeData) -> bool:
        return mime.hasImage() or any(url.isLocalFile() for url in mime.urls())

    def dragEnterEvent(self, event) -> None:
        if self._accepts(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
        if files:
            self.file_dropped.emit(files[0])
            event.acceptProposedAction()
        elif mime.hasImage():
            self.image_dropped.emit(QImage(mime.imageData()))
            event.acceptProposedAction()
        else:
            event.ignore()


class ResultRow(QFrame):
    play_requested = Signal(str)

    def __init__(self, rank: int, hit: dict, play_reason: str | None, query_label=None):
        super().__init__()
        self.setObjectName("resultRow")
        self.hit = hit
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        rank_label = QLabel(f"{rank}.")
        rank_label.setFixedWidth(22)
        layout.addWidget(rank_label)
        modality = hit["modality"]
        if modality == "image" and hit.get("path"):
            thumb = QLabel()
            pixmap = QPixmap(hit["path"])
            if not pixmap.isNull():
                thumb.setPixmap(pixmap.scaledToHeight(40, Qt.SmoothTransformation))
            thumb.setFixedWidth(90)
            layout.addWidget(thumb)
        if modality == "audio":
            self.play_button = QPushButton("▶ Play")
            self.play_button.setEnabled(play_reason is None)
            self.play_button.setToolTip(play_reason or f"Play {hit.get('path')}")
            self.play_button.clicked.connect(lambda: self.play_requested.emit(hit["path"]))
            layout.addWidget(self.play_button)
        text = hit.get("caption") or (Path(hit["path"]).parent.name + "/" + Path(hit["path"]).name
                                      if hit.get("path") else "")
        label = "" if hit.get("label") is None else f"label {hit['label']}"
        description = QLabel(f"<b>{_escape(text)}</b><br><span style='color:gray'>{label}</span>"
                             if modality != "image" else f"<span>{label}</span>")
        description.setTextFormat(Qt.RichText)
        description.setToolTip(hit.get("path") or hit.get("caption") or "")
        layout.addWidget(description, 1)
        score = QLabel(f"{hit['score']:.3f}")
        score.setObjectName("score")
        score.setToolTip("cosine similarity to the query")
        layout.addWidget(score)
        if query_label is not None and hit.get("label") == query_label:
            self.setStyleSheet("#resultRow { background: rgba(60, 170, 80, 45); border-radius: 4px; }")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class RetrievalPanel(QWidget):
    load_checkpoint_requested = Signal(str)
    gallery_requested = Signal(dict)        # {"source", "split", "limit"}
    message = Signal(str)
    query_shown = Signal(object)            # the result rows now show this answer (the worker's dict)

    def __init__(self, parent: QWidget | None = None, file_dialogs=None, settings=None):
        super().__init__(parent)
        self.setObjectName("retrievalPanel")
        self.dialogs = file_dialogs
        self.settings = settings
        self.host = None
        self.model_ready = False
        self.gallery_ready = False
        self.last_query: dict | None = None     # what "add to my data set" would add
        self.last_result: dict | None = None
        self.pending = 0
        self.sample_rate, self.max_seconds = 16000, 2.0
        self._tmp_dir = tempfile.TemporaryDirectory(prefix="nlmm-studio-")  # pasted images; gone at close
        self._tmp = Path(self._tmp_dir.name)

        # ----- model & gallery status
        self.model_label = QLabel("No model loaded")
        self.model_label.setObjectName("modelLabel")
        self.model_label.setWordWrap(True)
        self.load_button = QPushButton("Load checkpoint…")
        self.load_button.clicked.connect(self._choose_checkpoint)
        self.gallery_progress = QProgressBar()
        self.gallery_progress.setFormat("embedding the gallery %p%")
        self.gallery_progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self._cancel)
        status = QHBoxLayout()
        status.addWidget(self.model_label, 1)
        status.addWidget(self.gallery_progress)
        status.addWidget(self.cancel_button)
        status.addWidget(self.load_button)
        self.gallery_picker = GalleryPicker(file_dialogs=file_dialogs, settings=settings)
        self.gallery_picker.requested.connect(self.request_gallery)
        self._gallery_before = False
        self.model_title = "Model"

        # ----- image query
        self.drop_zone = DropZone()
        self.drop_zone.file_dropped.connect(self.query_file)
        self.drop_zone.image_dropped.connect(self.query_qimage)
        self.open_image_button = QPushButton("Open image…")
        self.open_image_button.clicked.connect(self._open_image)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Query with the image on the clipboard (Ctrl+V)")
        self.paste_button.clicked.connect(self.paste)
        image_box = QGroupBox("Image")
        image_layout = QVBoxLayout(image_box)
        image_layout.addWidget(self.drop_zone, 1)
        row = QHBoxLayout()
        row.addWidget(self.open_image_button)
        row.addWidget(self.paste_button)
        image_layout.addLayout(row)

        # ----- audio query
        self.capture = audio_capture.AudioCapture(self.sample_rate, self.max_seconds, self)
        self.capture.level.connect(lambda v: self.level_meter.setValue(int(100 * v)))
        self.capture.updated.connect(self._draw_waveform)
        self.capture.finished.connect(self._recorded)
        self.capture.failed.connect(self._capture_failed)
        self.record_button = QPushButton("● Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._record_toggled)
        self.mic = QComboBox()
        self.mic.setToolTip("Microphone")
        self.mic.currentIndexChanged.connect(self._mic_changed)
        self.level_meter = QProgressBar()
        self.level_meter.setRange(0, 100)
        self.level_meter.setTextVisible(False)
        self.level_meter.setMaximumHeight(10)
        self.level_meter.setToolTip("Input level (peak, −60 … 0 dBFS)")
        self.waveform = pg.PlotWidget()
        self.waveform.setObjectName("waveform")
        self.waveform.setMaximumHeight(90)
        self.waveform.setMinimumHeight(60)
        self.waveform.setYRange(-1, 1)
        self.waveform.setMouseEnabled(False, False)
        self.waveform.hideAxis("left")
        self.waveform.setLabel("bottom", "time (s)")
        self.waveform_curve = self.waveform.plot(pen=pg.mkPen("#1f77b4", width=1))
        self.open_audio_button = QPushButton("Open audio file…")
        self.open_audio_button.clicked.connect(self._open_audio)
        audio_box = QGroupBox("Speech")
        audio_layout = QVBoxLayout(audio_box)
        row = QHBoxLayout()
        row.addWidget(self.record_button)
        row.addWidget(self.mic, 1)
        audio_layout.addLayout(row)
        self.audio_reason = QLabel("")
        self.audio_reason.setObjectName("audioReason")
        self.audio_reason.setWordWrap(True)
        self.audio_reason.setStyleSheet("color: gray;")
        audio_layout.addWidget(self.audio_reason)
        audio_layout.addWidget(self.level_meter)
        audio_layout.addWidget(self.waveform)
        audio_layout.addWidget(self.open_audio_button)

        # ----- text query
        self.text = QLineEdit()
        self.text.setObjectName("queryText")
        self.text.setPlaceholderText("Type a caption, e.g. forty two")
        self.text.returnPressed.connect(self.query_text)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.query_text)
        text_box = QGroupBox("Text")
        text_layout = QHBoxLayout(text_box)
        text_layout.addWidget(self.text, 1)
        text_layout.addWidget(self.search_button)

        # ----- options
        self.k = QSpinBox()
        self.k.setRange(1, 20)
        self.k.setValue(5)
        self.k.setPrefix("top ")
        self.adapt = QCheckBox("Adapt memory (test-time training)")
        self.adapt.setObjectName("adaptToggle")
        self.adapt.setToolTip("Each query also writes into the central memory's top-k slots")
        self.reset_button = QPushButton("Reset memory")
        self.reset_button.setToolTip("Restore the trained memory slots")
        self.reset_button.clicked.connect(self.reset_memory)
        options = QHBoxLayout()
        options.addWidget(self.k)
        options.addWidget(self.adapt)
        options.addWidget(self.reset_button)
        options.addStretch(1)

        # ----- add to my data set
        self.dataset_path = QLineEdit()
        self.dataset_path.setPlaceholderText("folder of your data set")
        self.dataset_label = QLineEdit()
        self.dataset_label.setPlaceholderText("label (e.g. 42)")
        self.dataset_label.setMaximumWidth(120)
        self.dataset_browse = QPushButton("…")
        self.dataset_browse.setMaximumWidth(30)
        self.dataset_browse.clicked.connect(self._choose_dataset)
        self.add_button = QPushButton("Add to my data set")
        self.add_button.setObjectName("addToDataset")
        self.add_button.setToolTip("Append the last dropped image or recording (with the text box as caption)")
        self.add_button.clicked.connect(self.add_to_dataset)
        add_box = QGroupBox("Add to my data set")
        add_layout = QHBoxLayout(add_box)
        add_layout.addWidget(self.dataset_path, 1)
        add_layout.addWidget(self.dataset_browse)
        add_layout.addWidget(self.dataset_label)
        add_layout.addWidget(self.add_button)
        if settings is not None:
            self.dataset_path.setText(str(settings.value("dataset/folder", "") or ""))

        left = QVBoxLayout()
        left.addWidget(image_box, 2)
        left.addWidget(audio_box, 2)
        left.addWidget(text_box)
        left.addLayout(options)
        left.addWidget(add_box)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(520)

        # ----- results
        self.query_label = QLabel("Query: –")
        self.query_label.setObjectName("queryLabel")
        self.query_label.setWordWrap(True)
        self.latency_label = QLabel("")
        self.latency_label.setObjectName("latencyLabel")
        self.error_label = QLabel("")
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d03030; font-weight: bold;")
        self.results_area = QScrollArea()
        self.results_area.setWidgetResizable(True)
        self.results_widget = QWidget()
        self.results_layout = QHBoxLayout(self.results_widget)
        self.results_area.setWidget(self.results_widget)
        self.result_rows: dict[str, list[ResultRow]] = {}
        # Rows are widgets (thumbnails, rich text): rebuilding them costs ~5-10 ms, so a stream of answers
        # shows the newest at most 10 times a second; a single query is shown at once.
        self._rows_due: dict | None = None
        self._rows_shown_at = -1.0
        self._rows_timer = QTimer(self)
        self._rows_timer.setSingleShot(True)
        self._rows_timer.timeout.connect(self._show_due_results)
        right = QVBoxLayout()
        header = QHBoxLayout()
        header.addWidget(self.query_label, 1)
        header.addWidget(self.latency_label)
        right.addLayout(header)
        right.addWidget(self.error_label)
        right.addWidget(self.results_area, 1)

        body = QHBoxLayout()
        body.addWidget(left_widget, 0)
        body.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(status)
        layout.addWidget(self.gallery_picker)
        layout.addLayout(body, 1)

        paste = QShortcut(QKeySequence.Paste, self, context=Qt.WidgetWithChildrenShortcut)
        paste.activated.connect(self.paste)
        self.record_shortcut = QShortcut(QKeySequence(Qt.Key_Space), self, context=Qt.WidgetWithChildrenShortcut)
        self.record_shortcut.activated.connect(self.toggle_recording)

        self.check_audio()
        self._update_enabled()

    # ------------------------------------------------------------------ wiring
    def attach(self, host) -> None:
        self.host = host
        worker = host.worker
        worker.checkpoint_loaded.connect(self.on_checkpoint_loaded)
        worker.gallery_ready.connect(self.on_gallery_ready)
        worker.query_done.connect(self.on_query_done)
        worker.progress.connect(self.on_progress)
        worker.task_finished.connect(self.on_task_finished)
        worker.error.connect(self.on_error)
        worker.dataset_added.connect(self.on_dataset_added)

    def check_audio(self) -> None:
        """Record / play availability; the controls say why when they cannot work."""
        devices, reason = audio_capture.input_devices()
        self.mic.blockSignals(True)
        self.mic.clear()
        self.record_reason = reason
        for device in devices:
            self.mic.addItem(device["name"], device["name"])
        preferred = self.settings.value("audio/device", "") if self.settings is not None else ""
        if preferred and self.mic.findData(preferred) >= 0:
            self.mic.setCurrentIndex(self.mic.findData(preferred))
        self.mic.blockSignals(False)
        self.record_button.setEnabled(reason is None)
        self.mic.setEnabled(reason is None)
        self.record_button.setToolTip(reason or "Record from the microphone, then search (Space)")
        self.mic.setToolTip(reason or "Microphone")
        _, self.play_reason = audio_capture.output_devices()
        notes = [f"Recording: {reason}" if reason else "", f"Playback: {self.play_reason}" if self.play_reason else ""]
        self.audio_reason.setText("\n".join(n for n in notes if n))
        self.audio_reason.setVisible(any(notes))

    def _mic_changed(self, *_) -> None:
        if self.settings is not None and self.mic.currentData():
            self.settings.setValue("audio/device", self.mic.currentData())

    def _update_enabled(self) -> None:
        ready = self.model_ready and self.gallery_ready
        for widget in (self.search_button, self.open_image_button, self.paste_button, self.open_audio_button):
            widget.setEnabled(ready)
        if not ready:
            reason = "Load a model first" if not self.model_ready else "Wait for the gallery to be embedded"
            self.search_button.setToolTip(reason)
        else:
            self.search_button.setToolTip("Search with the text (Enter)")

    # ------------------------------------------------------------------ model & gallery
    def _choose_checkpoint(self) -> None:
        path = self.dialogs.open_file(self, "Load a checkpoint", CHECKPOINT_FILTER)
        if path:
            self.load_checkpoint_requested.emit(path)

    def loading(self, path: str) -> None:
        self.model_ready = self.gallery_ready = False
        self.model_label.setText(f"Loading {path}…")
        self._update_enabled()

    def no_model(self, reason: str) -> None:
        self.model_ready = self.gallery_ready = False
        self.model_label.setText(reason)
        self._update_enabled()

    def on_checkpoint_loaded(self, info: dict) -> None:
        self.model_ready = True
        self._gallery_before = False  # a new model: the old gallery's embeddings no longer apply
        self.checkpoint_path = info["path"]
        audio = info["config"]["audio"]
        self.sample_rate, self.max_seconds = int(audio["sample_rate"]), float(audio["max_seconds"])
        self.capture.sample_rate = self.sample_rate
        self.capture.max_frames = int(self.sample_rate * self.max_seconds)
        self.waveform.setXRange(0, self.max_seconds)
        self.model_title = f"Model <b>{info['name']}</b> ({Path(info['path']).name}, {info['device']})"
        self._gallery_status("embedding the gallery…")
        self._update_enabled()

    def _gallery_status(self, text: str) -> None:
        self.model_label.setText(f"{self.model_title} — {text}")

    def request_gallery(self, choice: dict) -> None:
        """"Use gallery": embed the picked items (the current gallery answers until they are ready)."""
        if not self.model_ready:
            self.show_error("Load a model first: the gallery is embedded with it")
            return
        problem = self.gallery_picker.problem()
        if problem:
            self.show_error(problem)
            return
        self._gallery_before = self.gallery_ready
        self.gallery_ready = False
        self._gallery_status("embedding the gallery…")
        self._update_enabled()
        self.gallery_requested.emit(choice)

    def on_gallery_ready(self, info: dict) -> None:
        self.gallery_ready = True
        self._gallery_before = True
        sizes = info["sizes"]
        parts = [f"{sizes[m]} {MODALITY_TITLES[m].lower()}" for m in ("image", "text", "audio") if m in sizes]
        self._gallery_status(f"gallery of {info['source']}/{info['split']}: {', '.join(parts)}")
        self.gallery_progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._update_enabled()

    def on_progress(self, topic: str, done: float, total: float) -> None:
        if topic != "gallery":
            return
        self.gallery_progress.setVisible(True)
        self.cancel_button.setVisible(True)
        if total <= 0:
            self.gallery_progress.setRange(0, 0)
        else:
            self.gallery_progress.setRange(0, 1000)
            self.gallery_progress.setValue(int(1000 * done / total))

    def on_task_finished(self, topic: str, outcome: str) -> None:
        if topic == "gallery" and outcome != "done":
            self.gallery_progress.setVisible(False)
            self.cancel_button.setVisible(False)
            # A cancelled or failed build leaves the previous gallery (if any) in use.
            self.gallery_ready = self._gallery_before and self.model_ready
            what = "cancelled" if outcome == "cancelled" else "not built"
            then = "the previous gallery is still searched" if self.gallery_ready else \
                "pick a gallery and press “Use gallery”"
            self._gallery_status(f"new gallery {what}: {then}")
            self._update_enabled()
        if topic == "query" and outcome != "done":
            self.pending = max(0, self.pending - 1)

    def _cancel(self) -> None:
        if self.host is not None:
            self.host.cancel()

    # ------------------------------------------------------------------ queries
    def _send(self, modality: str, value, description: str) -> None:
        if self.host is None or not (self.model_ready and self.gallery_ready):
            self.show_error("Load a model first (and wait for its gallery)")
            return
        self.error_label.setText("")
        self.query_label.setText(f"Query ({modality}): {description} — searching…")
        self.pending += 1
        self.host.query(modality, value, k=self.k.value(), adapt=self.adapt.isChecked(),
                        tag={"description": description, "sent": time.perf_counter()})

    def query_text(self) -> None:
        text = self.text.text().strip()
        if not text:
            self.show_error("Type some text to search with")
            return
        self.last_query = {"text": text}
        self._send("text", text, f"“{text}”")

    def query_file(self, path: str) -> None:
        """A dropped or opened file: audio by its suffix, otherwise an image."""
        file = Path(path)
        if not file.is_file():
            self.show_error(f"{path}: not a file")
            return
        if file.suffix.lower() in AUDIO_SUFFIXES:
            self.last_query = {"audio": str(file)}
            self._draw_file_waveform(file)
            self._send("audio", str(file), file.name)
        else:
            self.last_query = {"image": str(file)}
            self.drop_zone.show_image(QImage(str(file)))
            self._send("image", str(file), file.name)

    def query_qimage(self, image: QImage) -> None:
        if image.isNull():
            self.show_error("The clipboard / drop holds no readable image")
            return
        path = self._tmp / f"pasted-{time.strftime('%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.png"
        image.save(str(path))
        self.last_query = {"image": str(path)}
        self.drop_zone.show_image(image)
        self._send("image", str(path), "pasted image")

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self.query_qimage(QImage(mime.imageData()))
        elif mime is not None and any(url.isLocalFile() for url in mime.urls()):
            self.query_file(next(url.toLocalFile() for url in mime.urls() if url.isLocalFile()))
        elif mime is not None and mime.hasText() and self.text.hasFocus():
            self.text.paste()
        else:
            self.show_error("Nothing to paste: copy an image first")

    def _open_image(self) -> None:
        path = self.dialogs.open_file(self, "Open an image", IMAGE_FILTER)
        if path:
            self.query_file(path)

    def _open_audio(self) -> None:
        path = self.dialogs.open_file(self, "Open an audio file", AUDIO_FILTER)
        if path:
            self.query_file(path)

    # ------------------------------------------------------------------ recording
    def toggle_recording(self) -> None:
        if self.record_button.isEnabled():
            self.record_button.toggle()

    def _record_toggled(self, on: bool) -> None:
        if on:
            device = self.mic.currentData()
            self.record_button.setText("■ Stop")
            self.waveform_curve.setData([], [])
            if not self.capture.start(device if device else None):
                self.record_button.blockSignals(True)
                self.record_button.setChecked(False)
                self.record_button.blockSignals(False)
                self.record_button.setText("● Record")
        else:
            self.capture.stop()

    def _draw_waveform(self) -> None:
        wave = self.capture.waveform()
        step = max(1, len(wave) // 2000)
        shown = wave[::step]
        self.waveform_curve.setData(np.arange(len(shown)) * step / self.sample_rate, shown)

    def _draw_file_waveform(self, path: Path) -> None:
        try:
            import soundfile
            wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception:  # noqa: BLE001 - the worker reports unreadable files with the real reason
            self.waveform_curve.setData([], [])
            return
        wave = wave.mean(axis=1)
        step = max(1, len(wave) // 2000)
        self.waveform_curve.setData(np.arange(0, len(wave), step) / rate, wave[::step])

    def _recorded(self, wave: np.ndarray, rate: int) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(False)
        self.record_button.blockSignals(False)
        self.record_button.setText("● Record")
        self._draw_waveform()
        if len(wave) < rate // 10:
            self.show_error("The recording is shorter than 0.1 s; hold Record a little longer")
            return
        self.last_query = {"audio": (wave, rate)}
        self._send("audio", (wave, rate), f"recording ({len(wave) / rate:.1f} s)")

    def _capture_failed(self, reason: str) -> None:
        self.show_error(reason)

    # ------------------------------------------------------------------ results
    def on_query_done(self, result: dict) -> None:
        self.pending = max(0, self.pending - 1)
        self.last_result = result
        tag = result.get("tag") or {}
        adapt = " · memory adapted" if result.get("adapt") else ""
        self.query_label.setText(f"Query ({result['modality']}): {tag.get('description', result['query'])}{adapt}")
        self.latency_label.setText(f"{result['latency_ms']:.0f} ms")
        self.latency_label.setToolTip("Time the model took: preparing the input, embedding it, ranking the gallery")
        self._rows_due = result
        wait = self._rows_shown_at + ROWS_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._show_due_results()
        elif not self._rows_timer.isActive():
            self._rows_timer.start(int(1000 * wait) + 1)

    def _show_due_results(self) -> None:
        result, self._rows_due = self._rows_due, None
        if result is None:
            return
        self._rows_shown_at = time.monotonic()
        self._show_results(result)
        self.query_shown.emit(result)

    def _show_results(self, result: dict) -> None:
        while self.results_layout.count():
            item = self.results_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.result_rows = {}
        for modality in ("image", "text", "audio"):
            hits = result["results"].get(modality)
            if hits is None:
                continue
            box = QGroupBox(MODALITY_TITLES[modality])
            box.setObjectName(f"results-{modality}")
            column = QVBoxLayout(box)
            rows = []
            top_label = hits[0].get("label") if hits else None
            for rank, hit in enumerate(hits, start=1):
                row = ResultRow(rank, hit, self.play_reason, query_label=top_label)
                row.play_requested.connect(self.play)
                column.addWidget(row)
                rows.append(row)
            column.addStretch(1)
            self.result_rows[modality] = rows
            self.results_layout.addWidget(box, 1)

    def play(self, path: str) -> None:
        error = audio_capture.play_file(path)
        if error:
            self.show_error(error)

    def on_error(self, topic: str, message: str) -> None:
        if topic in ("query", "checkpoint", "gallery", "dataset", "memory"):
            self.show_error(message)
            if topic == "query":
                self.query_label.setText(self.query_label.text().replace(" — searching…", " — failed"))
            if topic == "checkpoint":
                self.model_label.setText(f"No model loaded: {message}")

    def show_error(self, message: str) -> None:
        self.error_label.setText(f"⚠ {message}")
        self.message.emit(message)

    # ------------------------------------------------------------------ memory & data set
    def reset_memory(self) -> None:
        if self.host is not None:
            self.host.reset_memory()

    def _choose_dataset(self) -> None:
        folder = self.dialogs.folder(self, "Choose (or create) your data set folder")
        if folder:
            self.dataset_path.setText(folder)

    def add_to_dataset(self) -> None:
        root = self.dataset_path.text().strip()
        if not root:
            self.show_error("Choose the folder of your data set first")
            return
        query = self.last_query or {}
        image, audio = query.get("image"), query.get("audio")
        text = self.text.text().strip() or None
        if image is None and audio is None and not text:
            self.show_error("Nothing to add yet: drop an image, record, or type a caption")
            return
        if self.settings is not None:
            self.settings.setValue("dataset/folder", root)
        self.host.add_to_dataset(root, image=image, text=text, audio=audio,
                                 label=self.dataset_label.text().strip() or None)

    def on_dataset_added(self, info: dict) -> None:
        row = info["row"]
        what = ", ".join(f"{k} {v}" for k, v in row.items() if v and k in ("image", "audio", "text"))
        self.error_label.setText("")
        self.message.emit(f"Added to {info['root']}: {what}")

    def discard_temp_files(self) -> None:
        self._tmp_dir.cleanup()

    def close_audio(self) -> None:
        self.capture.abort()
        audio_capture.stop_playback()
