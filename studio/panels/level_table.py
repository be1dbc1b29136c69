"""The CMS level table of the Model & levels panel: one row per level (name, chunk size, learning rate,
optimizer, weight decay), with add / remove / move up / move down. Every edit emits `edited`."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGroupBox, QHBoxLayout, QHeaderView, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from engine.config import OPTIMIZERS, ConfigError

COLUMNS = [("name", "Name"), ("chunk_size", "Chunk size (steps)"), ("lr", "Learning rate"),
           ("optimizer", "Optimizer"), ("weight_decay", "Weight decay")]
KEYS = [key for key, _ in COLUMNS]


def format_float(value: float) -> str:
    return f"{value:g}"


class LevelTable(QGroupBox):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__("Continuum Memory System levels", parent)
        self._loading = False           # rows being filled in by code, not edited
        self._marked: list = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("levelTable")
        self.table.setHorizontalHeaderLabels([title for _, title in COLUMNS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setToolTip("Each level's MLPs update every 'chunk size' steps, by its own optimizer")
        self.table.itemChanged.connect(self._changed)
        self.add_button = QPushButton("Add level")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.add_button.clicked.connect(self.add_level)
        self.remove_button.clicked.connect(self.remove_level)
        self.up_button.clicked.connect(lambda: self.move_level(-1))
        self.down_button.clicked.connect(lambda: self.move_level(+1))
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def _changed(self, *_) -> None:
        if not self._loading:
            self.edited.emit()

    # ------------------------------------------------------------------ rows as plain data
    def set_levels(self, levels: list[dict]) -> None:
        self._loading = True
        try:
            self.table.setRowCount(0)
            for level in levels:
                self._insert(level)
        finally:
            self._loading = False

    def levels(self) -> list[dict]:
        """The levels as the table shows them; raises ConfigError for text that is not even a number."""
        return [self._level(row) for row in range(self.table.rowCount())]

    def _insert(self, level: dict, row: int | None = None) -> None:
        row = self.table.rowCount() if row is None else row
        self.table.insertRow(row)
        for col, key in enumerate(KEYS):
            if key == "optimizer":
                combo = QComboBox()
                combo.addItems(list(OPTIMIZERS))
                combo.setCurrentText(str(level.get("optimizer", "adamw")))
                combo.currentTextChanged.connect(self._changed)
                combo.setToolTip("dmgd: Deep Momentum Gradient Descent; adamw; sgd")
                self.table.setCellWidget(row, col, combo)
            else:
                value = level.get(key, "")
                self.table.setItem(row, col, QTableWidgetItem(format_float(value) if isinstance(value, float)
                                                              else str(value)))

    def _texts(self, row: int) -> dict:
        texts = {}
        for col, key in enumerate(KEYS):
            if key == "optimizer":
                texts[key] = self.table.cellWidget(row, col).currentText()
            else:
                item = self.table.item(row, col)
                texts[key] = item.text().strip() if item else ""
        return texts

    def _level(self, row: int) -> dict:
        level = self._texts(row)
        for key, kind, reason in (("chunk_size", int, "must be a whole number of steps"),
                                  ("lr", float, "must be a number"), ("weight_decay", float, "must be a number")):
            try:
                level[key] = kind(level[key])
            except ValueError:
                raise ConfigError(f"cms_levels[{row}].{key}", f"{reason}, got '{level[key]}'") from None
        return level

    # ------------------------------------------------------------------ actions
    def add_level(self) -> None:
        names = {self.table.item(r, 0).text() for r in range(self.table.rowCount()) if self.table.item(r, 0)}
        n = self.table.rowCount()
        name = next(f"level{i}" for i in range(n + 1, n + 100) if f"level{i}" not in names)
        try:
            chunk = int(self.table.item(n - 1, 1).text()) * 4 if n else 1
        except (ValueError, AttributeError):
            chunk = 1
        self._loading = True
        self._insert({"name": name, "chunk_size": chunk, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 0.0})
        self._loading = False
        self.table.selectRow(n)
        self.edited.emit()

    def remove_level(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            row = self.table.rowCount() - 1
        if row >= 0:
            self.table.removeRow(row)
            self.edited.emit()

    def move_level(self, delta: int) -> None:
        row = self.table.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.table.rowCount():
            return
        level = self._texts(row)
        self._loading = True
        self.table.removeRow(row)
        self._insert(level, target)
        self._loading = False
        self.table.selectRow(target)
        self.edited.emit()

    # ------------------------------------------------------------------ marking an error
    def mark(self, row: int, key: str, message: str) -> None:
        """Marks the cell of `cms_levels[row].key` (a whole row's first cell for an unknown key)."""
        if row >= self.table.rowCount():
            return
        col = KEYS.index(key) if key in KEYS else 0
        item = self.table.item(row, col)
        if item is not None:
            self._loading = True
            item.setBackground(QColor(230, 80, 80, 110))
            item.setToolTip(message)
            self._loading = False
            self._marked.append(item)
        elif self.table.cellWidget(row, col) is not None:
            widget = self.table.cellWidget(row, col)
            widget.setStyleSheet("border: 2px solid #d03030;")
            self._marked.append(widget)

    def unmark(self) -> None:
        self._loading, was = True, self._loading
        for thing in self._marked:
            try:
                if isinstance(thing, QTableWidgetItem):
                    thing.setData(Qt.BackgroundRole, None)
                    thing.setToolTip("")
                else:
                    thing.setStyleSheet("")
            except RuntimeError:  # the row was removed
                pass
        self._marked = []
        self._loading = was
