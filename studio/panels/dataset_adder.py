""""Add to my data set" in the Retrieval panel: the folder of a folder data set (items.csv), a label, and
the button; the panel adds what was last dropped or recorded, with the text box as its caption."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLineEdit, QPushButton

from studio.settings_values import str_setting
from studio.panels.sketch_pad import save_png


class DatasetAdder(QGroupBox):
    add_requested = Signal(str, str)        # the folder, the label ('' for none)
    added = Signal(str)                     # what was added, in words
    failed = Signal(str)

    def __init__(self, dialogs=None, settings=None, parent=None):
        super().__init__("Add to my data set", parent)
        self.dialogs, self.settings = dialogs, settings
        self.path = QLineEdit()
        self.path.setPlaceholderText("folder of your data set")
        self.label = QLineEdit()
        self.label.setPlaceholderText("label (e.g. 42)")
        self.label.setMaximumWidth(120)
        self.browse = QPushButton("…")
        self.browse.setMaximumWidth(30)
        self.browse.clicked.connect(self._choose)
        self.add_button = QPushButton("Add to my data set")
        self.add_button.setObjectName("addToDataset")
        self.add_button.setToolTip("Append the last dropped image or recording (with the text box as caption)")
        self.add_button.clicked.connect(self._add)
        layout = QHBoxLayout(self)
        layout.addWidget(self.path, 1)
        layout.addWidget(self.browse)
        layout.addWidget(self.label)
        layout.addWidget(self.add_button)
        if settings is not None:
            self.path.setText(str_setting(settings, "dataset/folder"))

    def _choose(self) -> None:
        folder = self.dialogs.folder(self, "Choose (or create) your data set folder")
        if folder:
            self.path.setText(folder)

    def _add(self) -> None:
        root = self.path.text().strip()
        if root and self.settings is not None:
            self.settings.setValue("dataset/folder", root)
        self.add_requested.emit(root, self.label.text().strip())

    def add(self, session, root: str, label: str, last_query: dict, caption: str | None, drawing_path) -> None:
        """Appends the last query (a file, a recording, or a drawing saved as a PNG at `drawing_path()`)
        with `caption` through the retrieval session: one row of the folder's items.csv."""
        if not root:
            self.failed.emit("Choose the folder of your data set first")
            return
        image, audio = last_query.get("image"), last_query.get("audio")
        if last_query.get("drawing") is not None:    # the data set keeps files: the drawing as a PNG
            image = save_png(last_query["drawing"], drawing_path())
        if image is None and audio is None and not caption:
            self.failed.emit("Nothing to add yet: drop an image, record, or type a caption")
            return
        task = session.add_to_dataset(root, image=image, text=caption, audio=audio, label=label or None)
        task.result.connect(lambda added: self.added.emit(
            f"Added to {added.root}: " + ", ".join(f"{k} {v}" for k, v in added.row.items()
                                                   if v and k in ("image", "audio", "text"))))
        task.error.connect(self.failed.emit)
