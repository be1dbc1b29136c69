"""The top row of the Retrieval panel: which model answers and which gallery it searches, the gallery's
embedding progress with Cancel, and "Load checkpoint…"."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from studio.panels.results_view import MODALITY_TITLES


class ModelStatus(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model_title = "Model"
        self.label = QLabel("No model loaded")
        self.label.setObjectName("modelLabel")
        self.label.setWordWrap(True)
        self.load_button = QPushButton("Load checkpoint…")
        self.progress = QProgressBar()
        self.progress.setFormat("embedding the gallery %p%")
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        row.addWidget(self.load_button)

    def say(self, text: str) -> None:
        """Without a model: why not, or what is loading."""
        self.label.setText(text)

    def model_loaded(self, loaded) -> None:
        """A ModelLoaded: its name, file and device head the row from now on."""
        self.model_title = f"Model <b>{loaded.name}</b> ({Path(loaded.path).name}, {loaded.device})"

    def gallery(self, text: str) -> None:
        self.label.setText(f"{self.model_title} — {text}")

    def gallery_ready(self, ready) -> None:
        """A GalleryReady: what the model now searches."""
        parts = [f"{ready.sizes[m]} {MODALITY_TITLES[m].lower()}" for m in MODALITY_TITLES if m in ready.sizes]
        self.gallery(f"gallery of {ready.source}/{ready.split}: {', '.join(parts)}")
        self.embedded()

    def gallery_not_built(self, what: str, previous_searched: bool) -> None:
        """A gallery build `what` ("cancelled", "not built"): whether the previous one still answers."""
        self.embedded()
        then = "the previous gallery is still searched" if previous_searched else "pick a gallery and press “Use gallery”"
        self.gallery(f"new gallery {what}: {then}")

    def embedding(self, done: float, total: float) -> None:
        """Progress of the gallery being embedded (total 0: busy, no measure yet)."""
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.progress.setRange(0, 0 if total <= 0 else 1000)
        if total > 0:
            self.progress.setValue(int(1000 * done / total))

    def embedded(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
