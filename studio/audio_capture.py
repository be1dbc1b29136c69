"""Microphone capture and clip playback through sounddevice (PortAudio), Friture style.

The PortAudio callback runs on PortAudio's own thread and only copies the block into a list under a
lock; a GUI timer drains that list, updates the level meter and waveform, and ends the recording at
its length limit (counted in frames, not seconds: some devices deliver faster than real time).

`sounddevice` is imported lazily: importing it initialises PortAudio (which reads the ALSA
configuration once), and a machine without PortAudio raises OSError at import. Either way the
studio only disables the record / play controls and says why.
"""
from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.vocabulary import SAMPLE_RATE

POLL_MS = 33


def _sounddevice():
    """-> (module, None) or (None, reason)."""
    try:
        import sounddevice
    except OSError:
        return None, "PortAudio is not installed (Debian/Ubuntu: apt-get install libportaudio2)"
    except ImportError:
        return None, "the Python package 'sounddevice' is not installed"
    return sounddevice, None


def _devices(kind: str) -> tuple[list[dict], str | None]:
    sd, reason = _sounddevice()
    if sd is None:
        return [], reason
    channels = f"max_{kind}_channels"
    try:
        devices = [dict(d, index=i) for i, d in enumerate(sd.query_devices()) if d[channels] > 0]
    except Exception as err:  # noqa: BLE001 - PortAudioError and friends
        return [], f"PortAudio cannot list audio devices ({err})"
    if not devices:
        what = "microphone (audio input device)" if kind == "input" else "audio output device"
        return [], f"No {what} found on this machine"
    return devices, None


def input_devices() -> tuple[list[dict], str | None]:
    """Input devices as dicts with 'index' and 'name'; or [] and the reason recording is impossible."""
    return _devices("input")


def output_devices() -> tuple[list[dict], str | None]:
    return _devices("output")


def play_file(path: str) -> str | None:
    """Play a clip without blocking; returns an error message or None."""
    sd, reason = _sounddevice()
    if sd is None:
        return reason
    try:
        import soundfile
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
        sd.play(data, rate)
    except Exception as err:  # noqa: BLE001
        return f"cannot play {path}: {err}"
    return None


def stop_playback() -> None:
    sd, _ = _sounddevice()
    if sd is not None:
        try:
            sd.stop()
        except Exception:  # noqa: BLE001
            pass


class AudioCapture(QObject):
    """Records mono int16 at `sample_rate` until `stop()` or `max_seconds` worth of frames arrived."""

    level = Signal(float)           # 0..1 (peak of the newest audio, on a -60..0 dBFS scale)
    updated = Signal()              # new samples in `waveform()`
    finished = Signal(object, int)  # float32 waveform in [-1, 1], sample rate
    failed = Signal(str)

    def __init__(self, sample_rate: int = SAMPLE_RATE, max_seconds: float = 2.0, parent: QObject | None = None):
        super().__init__(parent)
        self.sample_rate, self.max_frames = sample_rate, int(sample_rate * max_seconds)
        self._lock = threading.Lock()
        self._blocks: list[np.ndarray] = []
        self._recorded: list[np.ndarray] = []
        self._frames = 0
        self._stream = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def recording(self) -> bool:
        return self._stream is not None

    def start(self, device: int | str | None = None) -> bool:
        if self._stream is not None:
            return True
        sd, reason = _sounddevice()
        if sd is None:
            self.failed.emit(reason)
            return False
        self._blocks, self._recorded, self._frames = [], [], 0
        try:
            self._stream = sd.InputStream(samplerate=self.sample_rate, channels=1, dtype="int16",
                                          device=device, callback=self._callback)
            self._stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudioError, OSError: the device went away
            self._stream = None
            self.failed.emit(f"cannot record from the microphone: {err}")
            return False
        self._timer.start()
        return True

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: copy only
        with self._lock:
            self._blocks.append(indata[:, 0].copy())

    def _poll(self) -> None:
        with self._lock:
            blocks, self._blocks = self._blocks, []
        if blocks:
            new = np.concatenate(blocks)[: max(0, self.max_frames - self._frames)]
            self._recorded.append(new)
            self._frames += len(new)
            peak = float(np.abs(new.astype(np.float32)).max()) / 32768.0 if len(new) else 0.0
            db = 20 * np.log10(max(peak, 1e-6))
            self.level.emit(float(np.clip((db + 60) / 60, 0, 1)))
            self.updated.emit()
        if self._frames >= self.max_frames:
            self.stop()

    def waveform(self) -> np.ndarray:
        if not self._recorded:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._recorded).astype(np.float32) / 32768.0

    def _end_stream(self, drain: bool) -> bool:
        """Close the input stream (`drain`: let PortAudio deliver what it holds, else drop it). False when
        there was none."""
        if self._stream is None:
            return False
        self._timer.stop()
        stream, self._stream = self._stream, None
        try:
            if drain:
                stream.stop()
            else:
                stream.abort()
            stream.close()
        except Exception:  # noqa: BLE001 - a device that vanished mid-recording still ends the recording
            pass
        return True

    def stop(self) -> None:
        """End the recording and emit `finished` with what was captured (even if short)."""
        if not self._end_stream(drain=True):
            return
        with self._lock:
            blocks, self._blocks = self._blocks, []
        if blocks and self._frames < self.max_frames:
            new = np.concatenate(blocks)[: self.max_frames - self._frames]
            self._recorded.append(new)
            self._frames += len(new)
        self.level.emit(0.0)
        self.finished.emit(self.waveform(), self.sample_rate)

    def abort(self) -> None:
        """Stop without emitting a result (window closing)."""
        self._end_stream(drain=False)
