"""File dialogs behind one small object, so tests (and scripted screenshots) can answer them."""
from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QWidget

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"
AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.mp3 *.opus *.aiff);;All files (*)"
CONFIG_FILTER = "NLMM config (*.yaml *.yml);;All files (*)"
CHECKPOINT_FILTER = "Checkpoints (*.pt);;All files (*)"


class FileDialogs:
    def open_file(self, parent: QWidget, title: str, filter: str, start: str = "") -> str:
        path, _ = QFileDialog.getOpenFileName(parent, title, start, filter)
        return path

    def save_file(self, parent: QWidget, title: str, filter: str, start: str = "") -> str:
        path, _ = QFileDialog.getSaveFileName(parent, title, start, filter)
        return path

    def folder(self, parent: QWidget, title: str, start: str = "") -> str:
        return QFileDialog.getExistingDirectory(parent, title, start)


class ScriptedDialogs(FileDialogs):
    """Answers from a queue (tests, screenshots); an empty queue answers 'cancelled'."""

    def __init__(self, answers: list[str] | None = None):
        self.answers = list(answers or [])
        self.asked: list[str] = []

    def _next(self, title: str) -> str:
        self.asked.append(title)
        return self.answers.pop(0) if self.answers else ""

    def open_file(self, parent, title, filter, start=""):
        return self._next(title)

    def save_file(self, parent, title, filter, start=""):
        return self._next(title)

    def folder(self, parent, title, start=""):
        return self._next(title)
