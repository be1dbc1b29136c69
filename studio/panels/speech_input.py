"""The speech box of the Retrieval panel: record from a microphone (with its level and waveform), listen
hands-free (every utterance a query), or open an audio file. Says why when recording or playback cannot
work."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from engine.config import AudioConfig
from studio import audio_capture
from engine.data.utterances import VAD_RATE
from studio.settings_values import str_setting
from studio.listening import HandsFreeListener


class SpeechInput(QGroupBox):
    recorded = Signal(object, int)      # float32 waveform, sample rate
    heard = Signal(object)              # an engine.data.utterances.Utterance, while listening hands-free
    open_requested = Signal()
    message = Signal(str)               # why something did not work

    def __init__(self, settings=None, parent=None):
        super().__init__("Speech", parent)
        self.settings = settings
        audio = AudioConfig()           # the model's format until a checkpoint says otherwise
        self.sample_rate, self.max_seconds = audio.sample_rate, audio.max_seconds
        self.play_reason: str | None = None
        self.capture = audio_capture.AudioCapture(self.sample_rate, self.max_seconds, self)
        self.capture.level.connect(lambda v: self.level_meter.setValue(int(100 * v)))
        self.capture.updated.connect(self._draw_recording)
        self.capture.finished.connect(self._recorded)
        self.capture.failed.connect(self.message)
        self.record_button = QPushButton("● Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._record_toggled)
        self.hands_free = HandsFreeListener(self)
        self.hands_free.utterance.connect(self._heard)
        self.hands_free.level.connect(lambda v: self.level_meter.setValue(int(100 * v)))
        self.hands_free.failed.connect(self._listening_failed)
        self.listen_button = QPushButton("◎ Listen")
        self.listen_button.setObjectName("listenButton")
        self.listen_button.setCheckable(True)
        self.listen_button.toggled.connect(self._listen_toggled)
        self.mic = QComboBox()
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
        self.open_button = QPushButton("Open audio file…")
        self.open_button.clicked.connect(self.open_requested)
        self.reason = QLabel("")
        self.reason.setObjectName("audioReason")
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet("color: gray;")
        row = QHBoxLayout()
        row.addWidget(self.record_button)
        row.addWidget(self.listen_button)
        row.addWidget(self.mic, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.reason)
        layout.addWidget(self.level_meter)
        layout.addWidget(self.waveform)
        layout.addWidget(self.open_button)
        self.check_audio()

    def check_audio(self) -> None:
        """Record / play availability; the controls say why when they cannot work."""
        devices, reason = audio_capture.input_devices()
        self.mic.blockSignals(True)
        self.mic.clear()
        for device in devices:
            self.mic.addItem(device["name"], device["name"])
        preferred = str_setting(self.settings, "audio/device") if self.settings is not None else ""
        if preferred and self.mic.findData(preferred) >= 0:
            self.mic.setCurrentIndex(self.mic.findData(preferred))
        self.mic.blockSignals(False)
        self.record_button.setEnabled(reason is None)
        self.listen_button.setEnabled(reason is None)
        self.mic.setEnabled(reason is None)
        self.record_button.setToolTip(reason or "Record from the microphone, then search (Space)")
        self.listen_button.setToolTip(reason or "Keep the microphone open: every utterance is a search")
        self.mic.setToolTip(reason or "Microphone")
        _, self.play_reason = audio_capture.output_devices()
        notes = [f"Recording: {reason}" if reason else "", f"Playback: {self.play_reason}" if self.play_reason else ""]
        self.reason.setText("\n".join(n for n in notes if n))
        self.reason.setVisible(any(notes))

    def set_format(self, sample_rate: int, max_seconds: float) -> None:
        """The loaded model's audio: recordings are made at its rate and cut to its length."""
        self.sample_rate, self.max_seconds = int(sample_rate), float(max_seconds)
        self.capture.sample_rate = self.sample_rate
        self.capture.max_frames = int(self.sample_rate * self.max_seconds)
        self.waveform.setXRange(0, self.max_seconds)

    def toggle_recording(self) -> None:
        if self.record_button.isEnabled():
            self.record_button.toggle()

    def show_file(self, path: Path) -> None:
        """Draws an audio file's waveform (the engine reports unreadable files with the real reason)."""
        try:
            import soundfile
            wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception:  # noqa: BLE001
            self.waveform_curve.setData([], [])
            return
        self._draw(wave.mean(axis=1), rate)

    def close_audio(self) -> None:
        self.listen_button.setChecked(False)
        self.capture.abort()
        audio_capture.stop_playback()

    def _mic_changed(self, *_) -> None:
        if self.settings is not None and self.mic.currentData():
            self.settings.setValue("audio/device", self.mic.currentData())

    def _record_toggled(self, on: bool) -> None:
        self.listen_button.setEnabled(not on and self.record_button.isEnabled())
        if on:
            device = self.mic.currentData()
            self.record_button.setText("■ Stop")
            self.waveform_curve.setData([], [])
            if not self.capture.start(device if device else None):
                self._record_button_off()
        else:
            self.capture.stop()

    def _listen_toggled(self, on: bool) -> None:
        self.record_button.setEnabled(not on and self.listen_button.isEnabled())
        if on:
            device = self.mic.currentData()
            self.listen_button.setText("■ Stop listening")
            if not self.hands_free.start(device if device else None):
                self.listen_button.setChecked(False)
        else:
            self.hands_free.stop()
            self.listen_button.setText("◎ Listen")

    def _listening_failed(self, message: str) -> None:
        self.listen_button.setChecked(False)
        self.message.emit(message)

    def _heard(self, utterance) -> None:
        if not self.listen_button.isChecked():
            return                      # cut just before the user stopped listening
        self.heard.emit(utterance)      # the query first: the waveform is drawn while the engine answers
        self._draw(utterance.waveform, VAD_RATE)

    def _record_button_off(self) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(False)
        self.record_button.blockSignals(False)
        self.record_button.setText("● Record")

    def _draw(self, wave: np.ndarray, rate: int) -> None:
        step = max(1, len(wave) // 2000)
        self.waveform_curve.setData(np.arange(0, len(wave), step) / rate, wave[::step])

    def _draw_recording(self) -> None:
        self._draw(self.capture.waveform(), self.sample_rate)

    def _recorded(self, wave: np.ndarray, rate: int) -> None:
        self._record_button_off()
        self._draw_recording()
        if len(wave) < rate // 10:
            self.message.emit("The recording is shorter than 0.1 s; hold Record a little longer")
            return
        self.recorded.emit(wave, rate)
