"""The run history: the runs under the runs folder with a one-line summary each, the running one following
its steps; "Show curves" and "Load checkpoint into Retrieval" for the selected run, "Compare" for two or
more (Ctrl/Shift+click).

Run logs are read on the host's files thread (`engine.training.runs`), never on the UI thread: listing
reads the end of each log, but a long run's whole log (for its curves) takes about a second to read.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from engine.training.runs import CHECKPOINT, describe_step


class RunHistory(QGroupBox):
    show_requested = Signal(str)            # a run folder whose curves the user wants to see
    load_requested = Signal(str)            # a checkpoint to load into the Retrieval panel
    compare_requested = Signal(list)        # two or more run folders, in the list's order
    message = Signal(str)

    def __init__(self, runs_dir: Path, parent: QWidget | None = None):
        super().__init__("Runs", parent)
        self.runs_dir = Path(runs_dir)
        self.host = None
        self.running: str | None = None     # the folder of the run going on, if any
        self.current: str | None = None     # the run last followed or shown
        self._running_item: QListWidgetItem | None = None
        self.listing = None                 # the task reading the list, while it reads

        self.runs = QListWidget()
        self.runs.setObjectName("runHistory")
        self.runs.setToolTip(f"Runs under {self.runs_dir}")
        self.runs.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.runs.itemActivated.connect(lambda item: self.show_requested.emit(item.data(Qt.UserRole)))
        self.runs.itemSelectionChanged.connect(self._update_compare)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.show_button = QPushButton("Show curves")
        self.show_button.clicked.connect(self._show_selected)
        self.load_button = QPushButton("Load checkpoint into Retrieval")
        self.load_button.setObjectName("loadIntoRetrieval")
        self.load_button.clicked.connect(self._load_selected)
        self.compare_button = QPushButton("Compare selected runs")
        self.compare_button.setObjectName("compareRuns")
        self.compare_button.clicked.connect(self._compare_selected)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.runs, 1)
        layout.addWidget(self.refresh_button)
        layout.addWidget(self.show_button)
        layout.addWidget(self.load_button)
        layout.addWidget(self.compare_button)
        layout.addWidget(self.warnings)
        self._update_compare()

    def attach(self, host) -> None:
        self.host = host
        self.refresh()

    # ------------------------------------------------------------------ the list
    def refresh(self, select: str | None = None) -> None:
        """Lists the runs again (read on the files thread); `select` names the folder to select."""
        if self.host is None:
            return
        from engine.training.runs import list_runs
        runs_dir = self.runs_dir
        self.listing = task = self.host.submit("run history", lambda _task: list_runs(runs_dir), files=True)
        task.result.connect(lambda runs: self._show_list(runs, select) if self.listing is task else None)

    def _show_list(self, runs, select: str | None) -> None:
        self.listing = None
        self.runs.clear()
        self._running_item = None
        selected = Path(select).resolve() if select else None
        running = Path(self.running).resolve() if self.running else None
        for run in runs:
            item = QListWidgetItem(f"{run.name}\n   {run.describe()}")
            item.setData(Qt.UserRole, run.folder)
            item.setToolTip(run.folder)
            self.runs.addItem(item)
            where = Path(run.folder).resolve()
            if where == selected:
                self.runs.setCurrentItem(item)
            if where == running:
                self._running_item = item

    def set_running(self, folder: str | None) -> None:
        """The run going on (its line follows its steps), or None once it ended; lists the runs again."""
        self.running = folder
        self.current = folder or self.current
        self.refresh(select=self.current)

    def show_progress(self, step) -> None:
        """The running run's line follows its steps (StepMetrics) without reading its log again."""
        if self._running_item is not None and self.running is not None:
            self._running_item.setText(f"{Path(self.running).name}\n   {describe_step(step)}, training")

    def show_warnings(self, warnings: list[str]) -> None:
        shown = self.warnings.text().split("\n") if self.warnings.text() else []
        self.warnings.setText("\n".join((shown + [f"⚠ {w}" for w in warnings])[-4:]))

    def clear_warnings(self) -> None:
        self.warnings.setText("")

    # ------------------------------------------------------------------ actions
    def selected(self) -> str | None:
        item = self.runs.currentItem()
        return item.data(Qt.UserRole) if item else None

    def _show_selected(self) -> None:
        run = self.selected()
        if run:
            self.show_requested.emit(run)

    def selected_runs(self) -> list[str]:
        """The selected run folders, in the list's order."""
        rows = sorted(self.runs.row(item) for item in self.runs.selectedItems())
        return [self.runs.item(row).data(Qt.UserRole) for row in rows]

    def _update_compare(self) -> None:
        count = len(self.runs.selectedItems())
        self.compare_button.setEnabled(count >= 2)
        self.compare_button.setToolTip(f"Overlay the curves of the {count} selected runs and list their configs' "
                                       "differences" if count >= 2 else
                                       "Select two or more runs to compare (Ctrl+click or Shift+click)")

    def _compare_selected(self) -> None:
        runs = self.selected_runs()
        if len(runs) < 2:
            self.message.emit("Select two or more runs to compare (Ctrl+click or Shift+click)")
            return
        self.compare_requested.emit(runs)

    def _load_selected(self) -> None:
        run = self.selected() or self.current
        checkpoint = Path(run) / CHECKPOINT if run else None
        if checkpoint is None or not checkpoint.exists():
            self.message.emit("No checkpoint in the selected run yet")
            return
        self.load_requested.emit(str(checkpoint))
