"""The fields of the Model & levels panel: which config keys it shows, as which kind of widget, with
which label and tooltip; building a form of them, and moving values between widgets and the config."""
from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QSizePolicy, QSpinBox, QWidget

from engine.config import ATTENTIONS, CMS_MODES, DELTA_RULES, PRECISIONS, TTT_MODES, ConfigError
from studio.panels.level_table import format_float

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



def get_path(data: dict, path: str):
    for key in path.split("."):
        data = data[key]
    return data


def set_path(data: dict, path: str, value) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def make_form(fields, edited) -> tuple[QFormLayout, dict[str, QWidget]]:
    """A form of `fields`; every edit calls `edited`. -> (the layout, key path -> widget)."""
    form, widgets = QFormLayout(), {}
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    for path, label, kind, choices, tip in fields:
        if kind == "int":
            widget = QSpinBox()
            widget.setRange(0, 10_000_000)
            widget.setKeyboardTracking(True)
            widget.valueChanged.connect(edited)
        elif kind == "choice":
            widget = QComboBox()
            widget.addItems(list(choices))
            widget.currentTextChanged.connect(edited)
        elif kind == "bool":
            widget = QCheckBox()
            widget.toggled.connect(edited)
        else:
            widget = QLineEdit()
            widget.textEdited.connect(edited)
        widget.setObjectName(path)
        widget.setProperty("kind", kind)
        if tip:
            widget.setToolTip(tip)
        widget.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        widgets[path] = widget
        form.addRow(label, widget)
    return form, widgets


def show_value(widget: QWidget, value) -> None:
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


def read_value(widget: QWidget, path: str):
    """The value a field holds; raises ConfigError (naming `path`) for text that is not even a number."""
    kind = widget.property("kind")
    if kind == "int":
        return widget.value()
    if kind == "choice":
        return widget.currentText()
    if kind == "bool":
        return widget.isChecked()
    if kind == "float":
        text = widget.text().strip()
        try:
            return float(text)
        except ValueError:
            raise ConfigError(path, f"must be a number, got '{text}'") from None
    return widget.text()
