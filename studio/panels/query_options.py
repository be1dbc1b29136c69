"""Two small parts of the Retrieval panel: the text query box, and the query options (top k, adapt memory,
which test-time learners adapt, reset memory). The panel wires them; they only hold their widgets."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QGroupBox, QHBoxLayout, QLineEdit, QMenu, QPushButton, QSpinBox,
                               QToolButton, QWidget)

from engine.vocabulary import ADAPTATION_MECHANISMS, DEFAULT_ADAPTATION

LEARNER_NAMES = {"memory_gated": "Memory slots: gated write", "memory_delta": "Memory slots: delta-rule write",
                 "hope": "HOPE projections (self-modifying q/k/v)", "cms_fast": "Fast CMS level (retrieval entropy)",
                 "domain": "Audio domain memory"}
WRITE_RULES = ("memory_gated", "memory_delta")


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
    learners_changed = Signal(tuple)   # the test-time learners chosen, names of ADAPTATION_MECHANISMS

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.k = QSpinBox()
        self.k.setRange(1, 20)
        self.k.setValue(5)
        self.k.setPrefix("top ")
        self.adapt = QCheckBox("Adapt memory (test-time training)")
        self.adapt.setObjectName("adaptToggle")
        self.adapt.setToolTip("Each query also adapts the model: the learners chosen under Learners "
                              "(slots written by text and image queries, the fast CMS level, the audio "
                              "domain memory by default)")
        self.learners = QToolButton()
        self.learners.setObjectName("learnersButton")
        self.learners.setText("Learners")
        self.learners.setToolTip("Which test-time learners adapt while “Adapt memory” is on "
                                 "(`nlmm bench ttt` measures each one)")
        self.learners.setPopupMode(QToolButton.InstantPopup)
        menu = QMenu(self.learners)
        self.learner_actions = {}
        for name in ADAPTATION_MECHANISMS:
            action = menu.addAction(LEARNER_NAMES[name])
            action.setCheckable(True)
            action.setChecked(name in DEFAULT_ADAPTATION)
            action.toggled.connect(lambda on, name=name: self._toggled(name, on))
            self.learner_actions[name] = action
        self.learners.setMenu(menu)
        self.reset_button = QPushButton("Reset memory")
        self.reset_button.setToolTip("Undo every test-time change: slots, projections, levels, audio domains")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.k)
        layout.addWidget(self.adapt)
        layout.addWidget(self.learners)
        layout.addWidget(self.reset_button)
        layout.addStretch(1)

    def chosen_learners(self) -> tuple[str, ...]:
        return tuple(name for name, action in self.learner_actions.items() if action.isChecked())

    def choose_learners(self, names) -> None:
        for name, action in self.learner_actions.items():
            action.blockSignals(True)
            action.setChecked(name in names)
            action.blockSignals(False)
        self.learners_changed.emit(self.chosen_learners())

    def _toggled(self, name: str, on: bool) -> None:
        if on and name in WRITE_RULES:   # one write rule for the slots at a time
            other = self.learner_actions[next(rule for rule in WRITE_RULES if rule != name)]
            other.blockSignals(True)
            other.setChecked(False)
            other.blockSignals(False)
        self.learners_changed.emit(self.chosen_learners())
