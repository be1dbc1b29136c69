"""Model & levels: the config as a form, the CMS level table, TTT settings, presets, YAML open/save.

Every edit rebuilds the config dict and validates it with the engine's own `config_from_dict`; the
first `ConfigError` is shown verbatim under the form and its field is marked, and `validity_changed`
tells the window to disable Train until it is fixed. The parameter count comes from the worker
(it builds the model on the meta device), debounced while typing.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QSizePolicy, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.config import (ATTENTIONS, CMS_MODES, DELTA_RULES, OPTIMIZERS, PRECISIONS, TTT_MODES, ConfigError,
                           config_from_dict, config_to_dict, load_config, preset_names, save_config)

LEVEL_COLUMNS = [("name", "Name"), ("chunk_size", "Chunk size (steps)"), ("lr", "Learning rate"),
                 ("optimizer", "Optimizer"), ("weight_decay", "Weight decay")]

# (key path, label, kind, choices, tooltip)
MODEL_FIELDS = [
    ("name", "Name", "str", None, "Names the run folder under runs/"),
    ("d_model", "Width (d_model)", "int", None, "Embedding width of every encoder and the joint space"),
    ("n_heads", "Attention heads", "int", None, "Must divide d_model"),
    ("ffn_mult", "CMS MLP width ×", "int", None, "Hidden width of each CMS level's MLP, as a multiple of d_model"),
    ("L_mem", "Memory slots (L_mem)", "int", None, "Slots of the central latent memory"),
    ("depth.text", "Text blocks", "int", None, None),
    ("depth.image", "Image blocks", "int", None, None),
    ("depth.audio", "Audio blocks", "int", None, None),
    ("attention", "Attention", "choice", ATTENTIONS, "fast_weight: delta rule; hebbian; softmax (for comparison)"),
    ("delta_rule", "Delta rule", "choice", DELTA_RULES, None),
    ("attention_chunk", "Attention chunk", "int", None, "Tokens per chunk of the chunked delta rule"),
    ("cms_mode", "CMS composition", "choice", CMS_MODES, "residual: x + Σ MLP_ℓ(x); nested: MLP_L(…MLP_1(x))"),
    ("hope.enable", "Self-modifying q/k/v (HOPE)", "bool", None, None),
    ("hope.mode", "HOPE update", "choice", DELTA_RULES, None),
    ("hope.lr", "HOPE rate", "float", None, None),
    ("precision", "Precision", "choice", PRECISIONS, "auto: bf16 on a CUDA GPU that supports it, else fp32; "
                                                  "bf16: also on CPUs that have it natively (AVX512-BF16, AMX)"),
]
TTT_FIELDS = [
    ("ttt.enable", "Test-time writes", "bool", None, "Queries may write into the central memory (adapt)"),
    ("ttt.mode", "Write rule", "choice", TTT_MODES, "gated_topk: gated move of the top-k slots; "
                                                      "l2_regression: one delta-rule step"),
    ("ttt.topk", "Slots per write (top-k)", "int", None, "Must be ≤ L_mem"),
    ("ttt.lr", "Write rate", "float", None, None),
]
TRAIN_FIELDS = [
    ("train.steps", "Steps", "int", None, None),
    ("data.batch_size", "Batch size", "int", None, "At least 2: contrastive learning needs negatives"),
    ("train.lr", "Outer learning rate", "float", None, "For everything outside the CMS levels"),
    ("train.warmup_steps", "Warm-up steps", "int", None, None),
    ("train.eval_every", "Evaluate every (steps)", "int", None, "Recall@K on the validation split"),
    ("train.checkpoint_every", "Checkpoint every (steps)", "int", None, None),
    ("train.seed", "Seed", "int", None, None),
]

_INDEXED = re.compile(r"^cms_levels\[(\d+)\]\.(\w+)$")


def _get(data: dict, path: str):
    for key in path.split("."):
        data = data[key]
    return data


def _set(data: dict, path: str, value) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def _format_float(value: float) -> str:
    return f"{value:g}"


class ModelPanel(QWidget):
    validity_changed = Signal(bool, str)    # valid, message ('' when valid)
    config_changed = Signal(object)         # the config dict (valid or not)
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
        self._count_request = -1

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
        model_box = QGroupBox("Model")
        model_box.setLayout(self._form(MODEL_FIELDS))
        ttt_box = QGroupBox("Test-time memory (TTT)")
        ttt_box.setLayout(self._form(TTT_FIELDS))
        train_box = QGroupBox("Training")
        train_box.setLayout(self._form(TRAIN_FIELDS))

        # ----- the CMS level table
        self.levels = QTableWidget(0, len(LEVEL_COLUMNS))
        self.levels.setObjectName("levelTable")
        self.levels.setHorizontalHeaderLabels([title for _, title in LEVEL_COLUMNS])
        self.levels.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.levels.horizontalHeader().setStretchLastSection(True)
        self.levels.verticalHeader().setVisible(True)
        self.levels.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.levels.setSelectionMode(QAbstractItemView.SingleSelection)
        self.levels.setToolTip("Each level's MLPs update every 'chunk size' steps, by its own optimizer")
        self.levels.itemChanged.connect(self._edited)
        self.add_level_button = QPushButton("Add level")
        self.remove_level_button = QPushButton("Remove")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.add_level_button.clicked.connect(self.add_level)
        self.remove_level_button.clicked.connect(self.remove_level)
        self.up_button.clicked.connect(lambda: self.move_level(-1))
        self.down_button.clicked.connect(lambda: self.move_level(+1))
        level_buttons = QHBoxLayout()
        for button in (self.add_level_button, self.remove_level_button, self.up_button, self.down_button):
            level_buttons.addWidget(button)
        level_buttons.addStretch(1)
        levels_box = QGroupBox("Continuum Memory System levels")
        levels_layout = QVBoxLayout(levels_box)
        levels_layout.addWidget(self.levels)
        levels_layout.addLayout(level_buttons)

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
        grid.addWidget(levels_box, 0, 1)
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

    # ------------------------------------------------------------------ building the form
    def _form(self, fields) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for path, label, kind, choices, tip in fields:
            if kind == "int":
                widget = QSpinBox()
                widget.setRange(0, 10_000_000)
                widget.setKeyboardTracking(True)
                widget.valueChanged.connect(self._edited)
            elif kind == "choice":
                widget = QComboBox()
                widget.addItems(list(choices))
                widget.currentTextChanged.connect(self._edited)
            elif kind == "bool":
                widget = QCheckBox()
                widget.toggled.connect(self._edited)
            else:
                widget = QLineEdit()
                widget.textEdited.connect(self._edited)
            widget.setObjectName(path)
            widget.setProperty("kind", kind)
            if tip:
                widget.setToolTip(tip)
            widget.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            self.fields[path] = widget
            form.addRow(label, widget)
        return form

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
                value = _get(data, key)
                kind = widget.property("kind")
                if kind == "int":
                    widget.setValue(int(value))
                elif kind == "choice":
                    widget.setCurrentText(str(value))
                elif kind == "bool":
                    widget.setChecked(bool(value))
                elif kind == "float":
                    widget.setText(_format_float(float(value)))
                else:
                    widget.setText(str(value))
            self.levels.setRowCount(0)
            for level in data["cms_levels"]:
                self._append_level_row(level)
        finally:
            self._loading = False
        self.file_label.setText(f"From {origin}" if origin else "")
        self._edited()

    def _append_level_row(self, level: dict, row: int | None = None) -> None:
        row = self.levels.rowCount() if row is None else row
        self.levels.insertRow(row)
        for col, (key, _) in enumerate(LEVEL_COLUMNS):
            if key == "optimizer":
                combo = QComboBox()
                combo.addItems(list(OPTIMIZERS))
                combo.setCurrentText(str(level.get("optimizer", "adamw")))
                combo.currentTextChanged.connect(self._edited)
                combo.setToolTip("dmgd: Deep Momentum Gradient Descent; adamw; sgd")
                self.levels.setCellWidget(row, col, combo)
            else:
                value = level.get(key, "")
                text = _format_float(value) if isinstance(value, float) else str(value)
                self.levels.setItem(row, col, QTableWidgetItem(text))

    def _level_dict(self, row: int) -> dict:
        level = {}
        for col, (key, _) in enumerate(LEVEL_COLUMNS):
            if key == "optimizer":
                level[key] = self.levels.cellWidget(row, col).currentText()
                continue
            item = self.levels.item(row, col)
            text = item.text().strip() if item else ""
            path = f"cms_levels[{row}].{key}"
            if key == "name":
                level[key] = text
            elif key == "chunk_size":
                try:
                    level[key] = int(text)
                except ValueError:
                    raise ConfigError(path, f"must be a whole number of steps, got '{text}'") from None
            else:
                try:
                    level[key] = float(text)
                except ValueError:
                    raise ConfigError(path, f"must be a number, got '{text}'") from None
        return level

    # ------------------------------------------------------------------ level table actions
    def add_level(self) -> None:
        names = {self.levels.item(r, 0).text() for r in range(self.levels.rowCount()) if self.levels.item(r, 0)}
        n = self.levels.rowCount()
        name = next(f"level{i}" for i in range(n + 1, n + 100) if f"level{i}" not in names)
        chunk = 1
        if n:
            try:
                chunk = int(self.levels.item(n - 1, 1).text()) * 4
            except (ValueError, AttributeError):
                chunk = 1
        self._loading = True
        self._append_level_row({"name": name, "chunk_size": chunk, "lr": 1e-3, "optimizer": "adamw",
                                "weight_decay": 0.0})
        self._loading = False
        self.levels.selectRow(n)
        self._edited()

    def remove_level(self) -> None:
        row = self.levels.currentRow()
        if row < 0:
            row = self.levels.rowCount() - 1
        if row >= 0:
            self.levels.removeRow(row)
            self._edited()

    def move_level(self, delta: int) -> None:
        row = self.levels.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.levels.rowCount():
            return
        try:
            level = self._raw_level(row)
        except Exception:  # noqa: BLE001
            return
        self._loading = True
        self.levels.removeRow(row)
        self._append_level_row(level, target)
        self._loading = False
        self.levels.selectRow(target)
        self._edited()

    def _raw_level(self, row: int) -> dict:
        level = {}
        for col, (key, _) in enumerate(LEVEL_COLUMNS):
            if key == "optimizer":
                level[key] = self.levels.cellWidget(row, col).currentText()
            else:
                item = self.levels.item(row, col)
                level[key] = item.text() if item else ""
        return level

    # ------------------------------------------------------------------ validation
    def current_dict(self) -> dict:
        """The config as the form shows it; raises ConfigError for text that is not even a number."""
        data = copy.deepcopy(self._data)
        for key, widget in self.fields.items():
            kind = widget.property("kind")
            if kind == "int":
                value = widget.value()
            elif kind == "choice":
                value = widget.currentText()
            elif kind == "bool":
                value = widget.isChecked()
            elif kind == "float":
                text = widget.text().strip()
                try:
                    value = float(text)
                except ValueError:
                    raise ConfigError(key, f"must be a number, got '{text}'") from None
            else:
                value = widget.text()
            _set(data, key, value)
        data["cms_levels"] = [self._level_dict(row) for row in range(self.levels.rowCount())]
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
        self.config_changed.emit(data)
        self._count_timer.start()

    def _show_error(self, text: str) -> None:
        self.status.setText(f"⚠ {text}")
        self.status.setStyleSheet("color: #d03030; font-weight: bold;")

    def _mark(self, path: str) -> None:
        match = _INDEXED.match(path or "")
        if match:
            row, key = int(match.group(1)), match.group(2)
            col = [k for k, _ in LEVEL_COLUMNS].index(key) if key in [k for k, _ in LEVEL_COLUMNS] else 0
            if row < self.levels.rowCount():
                item = self.levels.item(row, col)
                if item is not None:
                    self._loading = True
                    item.setBackground(QColor(230, 80, 80, 110))
                    item.setToolTip(str(self.error))
                    self._loading = False
                    self._marked.append(item)
                else:
                    widget = self.levels.cellWidget(row, col)
                    if widget is not None:
                        widget.setStyleSheet("border: 2px solid #d03030;")
                        self._marked.append(widget)
            return
        widget = self.fields.get(path)
        if widget is None and path == "cms_levels":
            widget = self.levels
        if widget is not None:
            widget.setStyleSheet("border: 2px solid #d03030;")
            self._marked.append(widget)

    def _unmark(self) -> None:
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

    # ------------------------------------------------------------------ parameter count
    def _request_count(self) -> None:
        if self.valid:
            self.parameter_count_requested.emit(self.current_dict())

    def set_count_request(self, request: int) -> None:
        self._count_request = request

    def show_parameter_count(self, request: int, count) -> None:
        if request != self._count_request:
            return  # an older request answered late
        self.param_label.setText("Parameters: –" if count is None else f"Parameters: {count:,}")

    def config(self):
        """The validated NLMMConfig (raises ConfigError when the form is invalid)."""
        return config_from_dict(self.current_dict())
