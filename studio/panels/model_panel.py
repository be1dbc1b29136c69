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
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from engine.config import (ATTENTIONS, CMS_MODES, DELTA_RULES, PRECISIONS, TTT_MODES, ConfigError, config_from_dict,
                           config_to_dict, load_config, preset_names, save_config)
from studio.panels.level_table import LevelTable, format_float

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


def _show(widget: QWidget, value) -> None:
    """Puts a config value into its field (without the signals a user's edit would send)."""
    kind = widget.property("kind")
    widget.blockSignals(True)
    if kind == "int":
        widget.setValue(int(value))
    elif kind == "choice":
        widget.setCurrentText(str(value))
    elif kind == "bool":
        widget.setChecked(bool(value))
    else:
        widget.setText(format_float(float(value)) if kind == "float" else str(value))
    widget.blockSignals(False)


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
        model_box = QGroupBox("Model")
        model_box.setLayout(self._form(MODEL_FIELDS))
        ttt_box = QGroupBox("Test-time memory (TTT)")
        ttt_box.setLayout(self._form(TTT_FIELDS))
        train_box = QGroupBox("Training")
        train_box.setLayout(self._form(TRAIN_FIELDS))

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
                _show(widget, _get(data, key))
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
        _show(self.fields[key], value)
        self._edited()
