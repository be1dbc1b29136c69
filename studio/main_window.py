"""The main window: five dockable panels around the engine host, menus, shortcuts and settings.

The window composes the panels: it hands each request to the host's sessions and passes the task handle
they return to the panels that show it. It never imports torch: the engine thread loads it after the
window shows, so the window is usable within a second or two of launch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QTabBar, QTabWidget


from engine.config import preset_names
from engine.paths import DEFAULT_CHECKPOINT
from engine.training.run_folder import new_run_name
from studio.dialogs import CHECKPOINT_FILTER, CONFIG_FILTER, FileDialogs
from studio.engine_host import EngineHost
from studio.panels.joint_space_panel import JointSpacePanel
from studio.panels.memory_panel import MemoryPanel
from studio.panels.model_panel import ModelPanel
from studio.panels.retrieval_panel import RetrievalPanel
from studio.panels.training_panel import TrainingPanel
from studio.settings_values import bytes_setting, int_setting, str_setting

PANELS = [("model", "Model && levels"), ("training", "Training"), ("retrieval", "Retrieval"), ("memory", "Memory"),
          ("joint", "Joint space")]
LAYOUT_VERSION = 2      # 2: the Joint space panel (a layout saved without it is not restored)


@dataclass
class StudioOptions:
    settings: QSettings | None = None
    runs_dir: Path = field(default_factory=lambda: Path.cwd() / "runs")
    checkpoint: str | None = None          # None: the last one used, else the shipped demo model
    config: str | None = None              # a YAML path or preset; None: the last one used, else "tiny"
    gallery_source: str | None = None   # None: the Retrieval panel's last choice (QSettings), else built-in
    gallery_split: str | None = None
    gallery_size: int | None = None
    device: str | None = None
    dialogs: FileDialogs | None = None
    load_checkpoint_on_start: bool = True


class MainWindow(QMainWindow):
    def __init__(self, options: StudioOptions | None = None):
        super().__init__()
        self.options = options = options or StudioOptions()
        self.settings = options.settings or QSettings("nlmm", "NLMM Studio")
        self.dialogs = options.dialogs or FileDialogs()
        self.setWindowTitle("NLMM Studio")
        self.resize(1280, 820)
        self.setDockOptions(QMainWindow.AllowTabbedDocks | QMainWindow.AnimatedDocks | QMainWindow.GroupedDragging)
        self.setDockNestingEnabled(True)
        self.setTabPosition(Qt.AllDockWidgetAreas, QTabWidget.North)

        # The user's corrections are kept beside the studio's settings (one file per model).
        corrections = Path(self.settings.fileName()).parent / "corrections"
        self.host = host = EngineHost(self, options.device, str(corrections))

        self.model_panel = ModelPanel(file_dialogs=self.dialogs)
        self.training_panel = TrainingPanel(options.runs_dir, file_dialogs=self.dialogs)
        self.retrieval_panel = RetrievalPanel(file_dialogs=self.dialogs, settings=self.settings)
        self.memory_panel = MemoryPanel()
        self.joint_panel = JointSpacePanel()
        picker = self.retrieval_panel.gallery_picker
        if options.gallery_source or options.gallery_split or options.gallery_size:
            current = picker.choice()
            picker.set_choice(options.gallery_source or current["source"], options.gallery_split or current["split"],
                              options.gallery_size or current["limit"])
        self.training_panel.attach(host)
        self.retrieval_panel.attach(host.retrieval)
        self.joint_panel.attach(host.retrieval)

        self.docks: dict[str, QDockWidget] = {}
        widgets = {"model": self.model_panel, "training": self.training_panel,
                   "retrieval": self.retrieval_panel, "memory": self.memory_panel, "joint": self.joint_panel}
        for key, title in PANELS:
            dock = QDockWidget(title, self)   # "&&": a literal "&" in the tab (a single one is a mnemonic)
            dock.setObjectName(f"dock-{key}")
            dock.setWidget(widgets[key])
            dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
            if hasattr(widgets[key], "set_in_view"):   # live views draw only while their tab is in front
                dock.visibilityChanged.connect(widgets[key].set_in_view)
            self.docks[key] = dock
        self._default_layout()

        # ----- wiring
        self.model_panel.validity_changed.connect(self.training_panel.set_config_valid)
        self.model_panel.parameter_count_requested.connect(
            lambda cfg: self.model_panel.count_parameters(host.count_parameters(cfg)))
        self.training_panel.start_requested.connect(self.start_training)
        self.training_panel.load_checkpoint_requested.connect(self.load_checkpoint)
        self.retrieval_panel.load_checkpoint_requested.connect(self.load_checkpoint)
        self.retrieval_panel.gallery_requested.connect(self.build_gallery)
        self.retrieval_panel.teach_requested.connect(self.teach)
        self.retrieval_panel.model_taught.connect(lambda path: self.settings.setValue("checkpoint/last", path))
        self.memory_panel.reset_requested.connect(self.retrieval_panel.reset_memory)
        self.memory_panel.forget_requested.connect(self.retrieval_panel.forget_correction)
        host.retrieval.memory_changed.connect(self.memory_panel.add_frame)
        self.retrieval_panel.results.shown.connect(self.joint_panel.show_query)
        self.joint_panel.play_requested.connect(self.retrieval_panel.play)
        host.training.submitted.connect(self.training_panel.follow)
        host.training.submitted.connect(lambda run: run.memory.connect(self.memory_panel.add_frame))
        for panel in (self.model_panel, self.training_panel, self.retrieval_panel, self.joint_panel):
            panel.message.connect(self.show_message)
        host.failed.connect(lambda title, message: self.show_message(f"{title}: {message}", 15000))
        host.started.result.connect(self.on_engine_ready)

        self.device_label = QLabel("engine starting…")
        self.statusBar().addPermanentWidget(self.device_label)
        self._menus()
        self._restore()

    # ------------------------------------------------------------------ layout
    def _default_layout(self) -> None:
        first = self.docks["model"]
        self.addDockWidget(Qt.LeftDockWidgetArea, first)
        for key in ("training", "retrieval", "memory", "joint"):
            self.docks[key].setFloating(False)
            self.addDockWidget(Qt.LeftDockWidgetArea, self.docks[key])
            self.tabifyDockWidget(first, self.docks[key])
        first.raise_()
        for bar in self.findChildren(QTabBar):   # the dock tabs: full titles, never elided
            bar.setElideMode(Qt.ElideNone)
            bar.setExpanding(False)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open config…", QKeySequence.Open, self.open_config)
        self.save_action = self._action(file_menu, "&Save config…", QKeySequence.Save, self.save_config)
        self._action(file_menu, "&Load checkpoint…", QKeySequence("Ctrl+L"), self.choose_checkpoint)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.Quit, self.close)
        train_menu = self.menuBar().addMenu("&Training")
        self.train_action = self._action(train_menu, "&Train", QKeySequence("Ctrl+Return"),
                                         self.training_panel.start)
        self.train_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self._action(train_menu, "&Pause", None, self.training_panel.pause)
        self._action(train_menu, "&Resume", None, self.training_panel.resume)
        self._action(train_menu, "&Stop", None, self.training_panel.stop)
        view = self.menuBar().addMenu("&View")
        for n, (key, title) in enumerate(PANELS, start=1):
            self._action(view, title, QKeySequence(f"Ctrl+{n}"), lambda _checked=False, key=key: self.show_panel(key))
        view.addSeparator()
        self._action(view, "Reset layout", None, self._default_layout)

    def _action(self, menu, title: str, shortcut, slot) -> QAction:
        action = QAction(title, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def show_panel(self, key: str) -> None:
        dock = self.docks[key]
        dock.show()
        dock.raise_()
        dock.widget().setFocus(Qt.ShortcutFocusReason)
        focus = dock.widget().focusNextPrevChild(True)
        del focus

    # ------------------------------------------------------------------ settings
    def _restore(self) -> None:
        settings = self.settings
        geometry = bytes_setting(settings, "window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = bytes_setting(settings, "window/state")
        if state is not None and int_setting(settings, "window/layout_version", 0) == LAYOUT_VERSION:
            self.restoreState(state, LAYOUT_VERSION)
        config = self.options.config or str_setting(settings, "config/last") or "tiny"
        try:
            if Path(config).suffix in (".yaml", ".yml") and Path(config).exists():
                if not self.model_panel.open_yaml(config):
                    self.model_panel.load_preset("tiny")
            else:
                self.model_panel.load_preset(config if config in preset_names() else "tiny")
        except Exception as err:  # noqa: BLE001 - a broken last config must not stop the studio
            self.show_message(f"Could not restore the last config: {err}")
            self.model_panel.load_preset("tiny")
        data = str_setting(settings, "training/data", "builtin")
        if data:
            self.training_panel.set_data_spec(str(data))
        if self.options.load_checkpoint_on_start:
            checkpoint = self.options.checkpoint or str_setting(settings, "checkpoint/last")
            if not checkpoint or not Path(checkpoint).exists():
                checkpoint = str(DEFAULT_CHECKPOINT)
            if Path(checkpoint).exists():
                self.load_checkpoint(checkpoint)
            else:
                self.retrieval_panel.no_model(
                    f"No model loaded: the demo model {DEFAULT_CHECKPOINT.name} is not there yet. "
                    "Load a checkpoint, or train one in the Training panel.")

    def _save_settings(self) -> None:
        settings = self.settings
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        settings.setValue("window/layout_version", LAYOUT_VERSION)
        settings.setValue("training/data", self.training_panel.data_spec())
        if self.model_panel.path is not None:
            settings.setValue("config/last", str(self.model_panel.path))
        settings.sync()

    # ------------------------------------------------------------------ actions
    def open_config(self) -> None:
        path = self.dialogs.open_file(self, "Open a config", CONFIG_FILTER)
        if path and self.model_panel.open_yaml(path):
            self.settings.setValue("config/last", path)
            self.show_panel("model")
            self.show_message(f"Opened {path}")

    def save_config(self) -> None:
        path = self.dialogs.save_file(self, "Save the config", CONFIG_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".yaml"
            if self.model_panel.save_yaml(path):
                self.settings.setValue("config/last", path)

    def choose_checkpoint(self) -> None:
        path = self.dialogs.open_file(self, "Load a checkpoint", CHECKPOINT_FILTER)
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str) -> None:
        task = self.host.retrieval.load_checkpoint(path)
        self.retrieval_panel.loading(path, task)
        self.joint_panel.model_changed(f"Loading {Path(path).name}: the map is drawn once its gallery is embedded")
        task.result.connect(self.on_checkpoint_loaded)

    def on_checkpoint_loaded(self, loaded) -> None:
        self.settings.setValue("checkpoint/last", loaded.path)
        self.show_message(f"Loaded {loaded.path}")
        choice = self.retrieval_panel.gallery_picker.choice()
        if self.retrieval_panel.gallery_picker.problem():
            choice["source"] = "builtin"
        self.build_gallery(choice)

    def build_gallery(self, choice: dict) -> None:
        task = self.host.retrieval.build_gallery(choice["source"], choice["split"], choice["limit"])
        self.retrieval_panel.building_gallery(task)
        task.result.connect(lambda _ready: self.joint_panel.gallery_changed())

    def start_training(self, request: dict) -> None:
        try:
            cfg = self.model_panel.current_dict()
        except Exception as err:  # noqa: BLE001 - the form is invalid: the button should not have been enabled
            self.training_panel.start_failed(str(err))
            return
        name = cfg.get("name") or "run"
        out_dir = self.options.runs_dir / new_run_name(name)
        self.settings.setValue("training/data", request["data"])
        self.host.training.start(cfg, request["data"], str(out_dir), device=request.get("device"))
        self.show_panel("training")

    def teach(self, request: dict) -> None:
        """Teach: fine-tune the model in use on the user's folder, in a run folder of its own."""
        if self.host.training.is_training():
            self.retrieval_panel.show_error("A training run is going: stop it first, then Teach")
            return
        out_dir = self.options.runs_dir / new_run_name("teach")
        run = self.host.training.start(None, f"folder:{request['folder']}", str(out_dir), steps=request["steps"],
                                       init=request["checkpoint"], teach_all=True)
        self.retrieval_panel.teaching(run, request["folder"])

    def on_engine_ready(self, ready) -> None:
        self.device_label.setText(f"engine on {ready.device}")
        self.training_panel.set_cuda(ready.cuda, ready.cuda_reason)

    def show_message(self, text: str, timeout_ms: int = 8000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        if self.host.training.is_training():
            self.show_message("Stopping training and saving its checkpoint…")
        self._save_settings()
        self.retrieval_panel.close_audio()
        self.host.shutdown()
        self.retrieval_panel.discard_temp_files()
        event.accept()
