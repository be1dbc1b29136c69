"""Hands-free listening in the studio: the microphone stays open and every utterance becomes a query.

PortAudio's callback only hands each block to the engine's `Listener` (a queue put); the listener cuts
utterances on its own thread, and `utterance` reaches receivers on the UI thread (a queued signal), which
sends the query. The UI thread never runs the detector. Utterances come tentative first (asked at the
first quiet window, not 200 ms of hangover later), then confirmed or replaced (`engine.data.utterances`).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.data.utterances import VAD_RATE, WINDOW, Listener
from studio import audio_capture


class HandsFreeListener(QObject):
    utterance = Signal(object)      # engine.data.utterances.Utterance
    level = Signal(float)           # 0..1 peak of the newest block, -60..0 dBFS
    failed = Signal(str)
    stopped = Signal()

    def __init__(self, parent: QObject | None = None, **cutter_options):
        super().__init__(parent)
        self.listener = Listener(self.utterance.emit, self._listener_failed, **{"tentative": True, **cutter_options})
        self._stream = None
        self._peak = 0.0                # newest block's peak, written by PortAudio's thread
        self._meter = QTimer(self)
        self._meter.setInterval(audio_capture.POLL_MS)
        self._meter.timeout.connect(self._show_level)

    @property
    def listening(self) -> bool:
        return self._stream is not None

    def start(self, device: int | str | None = None) -> bool:
        if self._stream is not None:
            return True
        sd, reason = audio_capture._sounddevice()
        if sd is None:
            self.failed.emit(reason)
            return False
        self.listener.start()
        try:
            self._stream = sd.InputStream(samplerate=VAD_RATE, channels=1, dtype="int16", blocksize=WINDOW,
                                          device=device, callback=self._callback)
            self._stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudioError, OSError: no such device
            self._stream = None
            self.listener.stop(drain=False)
            self.failed.emit(f"cannot listen to the microphone: {err}")
            return False
        self._meter.start()
        return True

    # ------------------------------------------------------------------ a source other than the microphone
    def start_without_microphone(self) -> None:
        """Listen to blocks given to `hear` (a recording played in, the UI bench) instead of a microphone."""
        self.listener.start()

    def hear(self, block: np.ndarray) -> None:
        """A block of samples at VAD_RATE, from any thread, as PortAudio's callback would hand it over."""
        self.listener.push(block)

    @property
    def detector_ready(self) -> bool:
        """Whether the voice-activity detector has loaded (on the listener's thread, once a session)."""
        return self.listener.cutter is not None

    @property
    def detector_loading(self) -> bool:
        """Whether the listener's thread is alive, still loading the detector or listening."""
        return self.listener.running

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: hand over only
        block = indata[:, 0].copy()
        self.hear(block)
        self._peak = float(np.abs(block.astype(np.float32)).max(initial=0.0)) / 32768.0

    def _show_level(self) -> None:
        self.level.emit(float(np.clip((20 * np.log10(max(self._peak, 1e-6)) + 60) / 60, 0, 1)))

    def stop(self) -> None:
        """Closes the microphone and stops the listener (a backlog of blocks is dropped, not heard)."""
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        self._meter.stop()
        try:
            stream.abort()
            stream.close()
        except Exception:  # noqa: BLE001 - a device that vanished still ends listening
            pass
        self.listener.stop(drain=False)
        self.level.emit(0.0)
        self.stopped.emit()

    def _listener_failed(self, message: str) -> None:   # the listener's thread
        self.failed.emit(message)
