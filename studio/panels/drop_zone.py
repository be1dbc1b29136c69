"""The image box of the Retrieval panel: a drop zone that accepts image (or audio) files dragged from a file
manager, and raw image data, and shows the image queried; "Open image…" and "Paste" beside it. Pasted
images and drawings added to a data set become files in the box's temporary folder (gone at close)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class DropZone(QLabel):
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


class ImageInput(QGroupBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Image", parent)
        self.drop_zone = DropZone()
        self.open_button = QPushButton("Open image…")
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Query with the image on the clipboard (Ctrl+V)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.paste_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.drop_zone, 1)
        layout.addLayout(buttons)
        self._scratch = tempfile.TemporaryDirectory(prefix="nlmm-studio-")

    def scratch(self, what: str) -> Path:
        """A new PNG path in the temporary folder."""
        return Path(self._scratch.name) / f"{what}-{time.strftime('%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.png"

    def discard_scratch(self) -> None:
        self._scratch.cleanup()
