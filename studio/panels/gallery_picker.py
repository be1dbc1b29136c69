"""The gallery picker: which items the Retrieval panel searches (a data source, its split, how many).

Queries are ranked against an embedded gallery. By default it is part of the built-in set's test split;
a user can point it at a Flickr8k folder or a folder of their own (items.csv), pick the split — or
"all", for a folder of their own — and the number of items, then embed it with "Use gallery".
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from studio.panels.data_source import DataSourceFields
from studio.settings_values import int_setting, str_setting

SPLITS = [("test", "test"), ("validation", "val"), ("train", "train"), ("all items", "all")]
MAX_ITEMS = 100_000


class GalleryPicker(QWidget):
    requested = Signal(dict)  # {"source": spec, "split": name, "limit": n}

    def __init__(self, parent: QWidget | None = None, file_dialogs=None, settings=None, size: int = 200):
        super().__init__(parent)
        self.setObjectName("galleryPicker")
        self.dialogs, self.settings = file_dialogs, settings
        self.data_source = DataSourceFields(self, file_dialogs, placeholder="folder (Flickr8k or your own items.csv)",
                                            tooltip="Where the items that queries are ranked against come from",
                                            browse_title="Choose the gallery's folder")
        self.source, self.path, self.browse = self.data_source.kind, self.data_source.path, self.data_source.browse
        self.source.setObjectName("gallerySource")
        self.split = QComboBox()
        self.split.setObjectName("gallerySplit")
        for title, key in SPLITS:
            self.split.addItem(title, key)
        self.split.setToolTip("Which split of the source to search (“all items”: every split)")
        self.size = QSpinBox()
        self.size.setObjectName("gallerySize")
        self.size.setRange(1, MAX_ITEMS)
        self.size.setValue(size)
        self.size.setSuffix(" items")
        self.size.setToolTip("At most this many items, spread evenly over the split")
        self.use_button = QPushButton("Use gallery")
        self.use_button.setObjectName("useGallery")
        self.use_button.setToolTip("Embed these items with the loaded model and search them")
        self.use_button.clicked.connect(self.request)

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Gallery:"))
        row.addWidget(self.source)
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        row.addWidget(self.split)
        row.addWidget(self.size)
        row.addWidget(self.use_button)
        if settings is not None:
            self.set_choice(str_setting(settings, "gallery/source", "builtin") or "builtin",
                            str_setting(settings, "gallery/split", "test") or "test",
                            int_setting(settings, "gallery/size", size))

    # ------------------------------------------------------------------ state
    def spec(self) -> str:
        return self.data_source.spec()

    def choice(self) -> dict:
        return {"source": self.spec(), "split": self.split.currentData(), "limit": self.size.value()}

    def set_choice(self, source: str, split: str = "test", size: int | None = None) -> None:
        self.data_source.set_spec(source)
        index = self.split.findData(split)
        if index >= 0:
            self.split.setCurrentIndex(index)
        if size:
            self.size.setValue(int(size))

    def problem(self) -> str:
        """Why the current choice cannot be used ('' when it can)."""
        return self.data_source.problem()

    # ------------------------------------------------------------------ actions
    def request(self) -> None:
        if self.settings is not None:
            choice = self.choice()
            self.settings.setValue("gallery/source", choice["source"])
            self.settings.setValue("gallery/split", choice["split"])
            self.settings.setValue("gallery/size", choice["limit"])
        self.requested.emit(self.choice())
