"""The corrections the retrieval model holds (`engine.events.CorrectionLearnt`), newest last, each one
removable ("Forget"): what the user taught, what it cost, and which parts of the encoder the last one moved.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout


class CorrectionsList(QGroupBox):
    forget_requested = Signal(int)      # the index of the correction to drop

    def __init__(self):
        super().__init__("Corrections held")
        self.setObjectName("correctionsList")
        self.held = ()
        self.rows = QListWidget()
        self.rows.setObjectName("correctionRows")
        self.rows.setToolTip("Each answer you marked right (Retrieval panel): the model learnt it at once")
        self.rows.setMaximumHeight(120)      # the plots above keep the room
        self.rows.currentRowChanged.connect(lambda row: self.forget_button.setEnabled(row >= 0))
        self.forget_button = QPushButton("Forget")
        self.forget_button.setToolTip("Drop the chosen correction; the others are learnt again")
        self.forget_button.setEnabled(False)
        self.forget_button.clicked.connect(self._forget)
        self.summary = QLabel("None yet: mark the right answer of a query in the Retrieval panel (✓)")
        self.summary.setObjectName("correctionSummary")
        self.summary.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.forget_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.rows)

    def show_held(self, learnt) -> None:
        """A CorrectionLearnt (None: no retrieval model yet)."""
        held = learnt.held if learnt is not None else ()
        if held != self.held:
            self.held = held
            self.rows.clear()
            for n, c in enumerate(held, start=1):
                self.rows.addItem(f"{n}. {c.modality} “{shown(c.query)}” → {c.label} ({c.target})  ·  "
                                  f"{1e3 * c.seconds:.0f} ms")
            self.rows.scrollToBottom()
            self.forget_button.setEnabled(self.rows.currentRow() >= 0)
        if not held:
            self.summary.setText("None yet: mark the right answer of a query in the Retrieval panel (✓)")
            return
        moved = learnt.moved or {}
        parts = ", ".join(f"{m} {where} {100 * v:.2f} %" for m, wheres in moved.items() for where, v in wheres.items())
        latest = (f"The last one, “{held[learnt.latest].label}”, was learnt in {1e3 * learnt.seconds:.0f} ms. "
                  if 0 <= learnt.latest < len(held) else "")
        replayed = (f"Consolidating while idle: {learnt.consolidated} of "
                    f"{learnt.consolidated + learnt.consolidation_due} replay steps. "
                    if learnt.consolidation_due else
                    f"Consolidated while idle: {learnt.consolidated} replay steps. " if learnt.consolidated else "")
        self.summary.setText(f"{len(held)} held, one slot each. {latest}{replayed}Weights moved since the first (of "
                             f"their trained size): {parts or 'none'}.")

    def _forget(self) -> None:
        row = self.rows.currentRow()
        if 0 <= row < len(self.held):
            self.forget_button.setEnabled(False)
            self.forget_requested.emit(row)


def shown(query: str) -> str:
    """A query as a person reads it: a file by its name, a text or a recording as it is."""
    return Path(query).name if "/" in query or "\\" in query else query
