"""Two small parts of the Retrieval panel: the text query box, and the query options (top k, adapt memory,
reset memory). The panel wires them; they only hold their widgets."""
from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget


class TextInput(QGroupBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Text", parent)
        self.text = QLineEdit()
        self.text.setObjectName("queryText")
        self.text.setPlaceholderText("Type a caption, e.g. forty two")
        self.search_button = QPushButton("Search")
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.search_button)


class QueryOptions(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.k = QSpinBox()
        self.k.setRange(1, 20)
        self.k.setValue(5)
        self.k.setPrefix("top ")
        self.adapt = QCheckBox("Adapt memory (test-time training)")
        self.adapt.setObjectName("adaptToggle")
        self.adapt.setToolTip("Each query also writes into the central memory's top-k slots")
        self.reset_button = QPushButton("Reset memory")
        self.reset_button.setToolTip("Restore the trained memory slots")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.k)
        layout.addWidget(self.adapt)
        layout.addWidget(self.reset_button)
        layout.addStretch(1)
