"""The widgets that name a data source — kind (built-in, Flickr8k, own folder), its folder, Browse… — and
the spec string the engine's `load_source` takes ("builtin", "flickr8k:DIR", "folder:DIR"). The Training
panel and the Retrieval panel's gallery picker both lay them out in their own rows."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFileDialog, QLineEdit, QPushButton, QWidget

KINDS = [("Built-in demo set", "builtin"), ("Flickr8k folder", "flickr8k"), ("My data folder", "folder")]


class DataSourceFields:
    def __init__(self, parent: QWidget, dialogs=None, tooltip: str = "", placeholder: str = "folder",
                 browse_title: str = "Choose the data folder"):
        self.parent, self.dialogs, self.browse_title = parent, dialogs, browse_title
        self.kind = QComboBox(parent)
        for title, key in KINDS:
            self.kind.addItem(title, key)
        self.kind.setToolTip(tooltip)
        self.path = QLineEdit(parent)
        self.path.setPlaceholderText(placeholder)
        self.browse = QPushButton("Browse…", parent)
        self.browse.clicked.connect(self._browse)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    def spec(self) -> str:
        kind = self.kind.currentData()
        return "builtin" if kind == "builtin" else f"{kind}:{self.path.text().strip()}"

    def set_spec(self, spec: str) -> None:
        kind, _, path = spec.partition(":")
        index = self.kind.findData(kind)
        if index >= 0:
            self.kind.setCurrentIndex(index)
            self.path.setText(path)

    def problem(self) -> str:
        """Why the spec cannot be used yet ('' when it can)."""
        if self.kind.currentData() != "builtin" and not self.path.text().strip():
            return "Choose the data folder first."
        return ""

    def set_enabled(self, enabled: bool) -> None:
        self.kind.setEnabled(enabled)
        self._kind_changed(enabled=enabled)

    def _kind_changed(self, *_, enabled: bool = True) -> None:
        needs_path = enabled and self.kind.currentData() != "builtin"
        self.path.setEnabled(needs_path)
        self.browse.setEnabled(needs_path)

    def _browse(self) -> None:
        folder = self.dialogs.folder(self.parent, self.browse_title) if self.dialogs else \
            QFileDialog.getExistingDirectory(self.parent, self.browse_title)
        if folder:
            self.path.setText(folder)
