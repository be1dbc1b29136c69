"""Model & levels: the config as a form, the CMS level table, TTT settings, presets, YAML open/save.

Every edit rebuilds the config dict and validates it with the engine's own `config_from_dict`; the
first `ConfigError` is shown verbatim under the form and its field is marked, and `validity_changed`
tells the window to disable Train until it is fixed. The parameter count comes from the engine
(it builds the model on the meta device), debounced while typing. The level table is `level_table.py`.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.config import ConfigError, config_from_dict, config_to_dict, load_config, preset_names, save_config
from studio.panels.config_fields import (MODEL_FIELDS, TRAIN_FIELDS, TTT_FIELDS, get_path, make_form, read_value,
                                         set_path, show_value)
from studio.panels.level_table import LevelTable

_INDEXED = re.compile(r"^cms_levels\[(\d+)\]\.(\w+)$")


class ModelPanel(QWidget):
    validity_changed = Signal(bool, str)    # valid, message ('' when valid)
    message = Signal(str)                   # status-bar text
    parameter_count_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None, file_dialogs=None):
        super().__init__(parent)
        self.setObjectName("modelPanel")
        self.dialogs = file_dialogs
        self._loading = False
        self._data: dict = {}
        self.valid = False
        self.error: ConfigError | None = None
        self.path: Path | None = None
        self._marked: list = []
        self.fields: dict[str, QWidget] = {}
        self._count_task = None

        # ----- top row: presets and files
        self.preset = QComboBox()
        self.preset.addItems(preset_names())
        self.preset.setToolTip("Start from one of the configs in configs/")
        self.preset_button = QPushButton("Use preset")
        self.preset_button.clicked.connect(lambda: self.load_preset(self.preset.currentText()))
        self.open_button = QPushButton("Open YAML…")
        self.open_button.setToolTip("Open a config file (Ctrl+O)")
        self.save_button = QPushButton("Save YAML…")
        self.save_button.setToolTip("Save this config (Ctrl+S)")
        self.file_label = QLabel("")
        self.file_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset:"))
        top.addWidget(self.preset)
        top.addWidget(self.preset_button)
        top.addSpacing(12)
        top.addWidget(self.open_button)
        top.addWidget(self.save_button)
        top.addWidget(self.file_label, 1)

        # ----- forms
        boxes = []
        for title, fields in (("Model", MODEL_FIELDS), ("Test-time memory (TTT)", TTT_FIELDS), ("Training", TRAIN_FIELDS)):
            form, widgets = make_form(fields, self._edited)
            self.fields.update(widgets)
            boxes.append(QGroupBox(title))
            boxes[-1].setLayout(form)
        model_box, ttt_box, train_box = boxes

        # ----- the CMS level table
        self.level_table = LevelTable()
        self.level_table.edited.connect(self._edited)

        # ----- status: validation and parameter count
        self.status = QLabel("")
        self.status.setObjectName("validation")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.param_label = QLabel("Parameters: –")
        self.param_label.setObjectName("parameterCount")
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.param_label)

        grid = QGridLayout()
        grid.addWidget(model_box, 0, 0, 2, 1)
        grid.addWidget(self.level_table, 0, 1)
        right = QHBoxLayout()
        right.addWidget(ttt_box)
        right.addWidget(train_box)
        grid.addLayout(right, 1, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(0, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid, 1)
        layout.addLayout(status_row)

        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(250)
        self._count_timer.timeout.connect(self._request_count)

    # ------------------------------------------------------------------ loading
    def load_preset(self, name: str) -> None:
        self.preset.setCurrentText(name)
        self.set_config(config_to_dict(load_config(name)), path=None, origin=f"preset '{name}'")

    def open_yaml(self, path: str | Path) -> bool:
        try:
            cfg = load_config(path)
        except ConfigError as err:
            self.message.emit(f"Cannot open config: {err}")
            self._show_error(str(err))
            return False
        self.set_config(config_to_dict(cfg), path=Path(path), origin=str(path))
        return True

    def save_yaml(self, path: str | Path) -> bool:
        if not self.valid:
            self.message.emit(f"Fix the config before saving: {self.error}")
            return False
        try:
            save_config(config_from_dict(self.current_dict()), path)
        except (OSError, ConfigError) as err:
            self.message.emit(f"Cannot save config: {err}")
            return False
        self.path = Path(path)
        self.file_label.setText(f"Saved to {path}")
        self.message.emit(f"Config saved to {path}")
        return True

    def set_config(self, data: dict, path: Path | None = None, origin: str = "") -> None:
        self._loading = True
        try:
            self._data = copy.deepcopy(data)
            self.path = path
            for key, widget in self.fields.items():
                show_value(widget, get_path(data, key))
            self.level_table.set_levels(data["cms_levels"])
        finally:
            self._loading = False
        self.file_label.setText(f"From {origin}" if origin else "")
        self._edited()

    # ------------------------------------------------------------------ validation
    def current_dict(self) -> dict:
        """The config as the form shows it; raises ConfigError for text that is not even a number."""
        data = copy.deepcopy(self._data)
        for key, widget in self.fields.items():
            set_path(data, key, read_value(widget, key))
        data["cms_levels"] = self.level_table.levels()
        return data

    def _edited(self, *_) -> None:
        if self._loading:
            return
        self._unmark()
        try:
            data = self.current_dict()
            config_from_dict(data)
        except ConfigError as err:
            self.valid, self.error = False, err
            self._show_error(str(err))
            self._mark(err.path)
            self.param_label.setText("Parameters: –")
            self.validity_changed.emit(False, str(err))
            return
        self.valid, self.error = True, None
        self.status.setText("✓ Config is valid")
        self.status.setStyleSheet("")
        self.validity_changed.emit(True, "")
        self._count_timer.start()

    def _show_error(self, text: str) -> None:
        self.status.setText(f"⚠ {text}")
        self.status.setStyleSheet("color: #d03030; font-weight: bold;")

    def _mark(self, path: str) -> None:
        match = _INDEXED.match(path or "")
        if match:
            self.level_table.mark(int(match.group(1)), match.group(2), str(self.error))
            return
        widget = self.fields.get(path)
        if widget is None and path == "cms_levels":
            widget = self.level_table.table
        if widget is not None:
            widget.setStyleSheet("border: 2px solid #d03030;")
            self._marked.append(widget)

    def _unmark(self) -> None:
        self.level_table.unmark()
        for widget in self._marked:
            widget.setStyleSheet("")
        self._marked = []

    # ------------------------------------------------------------------ parameter count
    def _request_count(self) -> None:
        if self.valid:
            self.parameter_count_requested.emit(self.current_dict())

    def count_parameters(self, task) -> None:
        """The engine counts the parameters (`task` -> int, or None for an invalid config); only the
        newest count is shown (an older one may answer late)."""
        self._count_task = task
        task.result.connect(lambda count: self._count_task is task and self.param_label.setText(
            "Parameters: –" if count is None else f"Parameters: {count:,}"))

    def config(self):
        """The validated NLMMConfig (raises ConfigError when the form is invalid)."""
        return config_from_dict(self.current_dict())

    def set_field(self, key: str, value) -> None:
        """Sets one field of the form ("train.steps", "data.batch_size", …) as if typed."""
        show_value(self.fields[key], value)
        self._edited()
