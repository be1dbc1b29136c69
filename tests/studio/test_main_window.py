"""The window as a whole: the demo model by default (or a clear message without it), keyboard reaches every
panel, training updates throttled, settings persist, the UI thread never loads torch."""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]


def test_the_window_opens_without_the_demo_checkpoint_and_offers_to_load_one(make_window, monkeypatch, tmp_path):
    import studio.main_window as main_window
    monkeypatch.setattr(main_window, "DEFAULT_CHECKPOINT", tmp_path / "missing" / "nlmm-demo.pt")
    window = make_window(checkpoint=None)
    panel = window.retrieval_panel
    assert "not there yet" in panel.model_label.text()
    assert not panel.search_button.isEnabled() and panel.load_button.isEnabled()
    assert window.training_panel.train_button.isEnabled()


def test_without_a_checkpoint_the_window_opens_the_shipped_demo_model(make_window, qtbot):
    from engine.paths import DEFAULT_CHECKPOINT
    window = make_window(checkpoint=None)           # and no last checkpoint in the settings
    panel = window.retrieval_panel
    qtbot.waitUntil(lambda: panel.gallery_ready or bool(window.errors), timeout=90_000)
    assert not window.errors, window.errors
    assert DEFAULT_CHECKPOINT.name in panel.model_label.text() and "tiny" in panel.model_label.text()
    assert window.settings.value("checkpoint/last") == str(DEFAULT_CHECKPOINT)


def test_every_panel_is_reachable_from_the_keyboard(make_window, qtbot):
    window = make_window(load_checkpoint=False)
    window.activate(qtbot)            # shortcuts go to the active window
    from studio.main_window import PANELS
    keys = [key for key, _ in PANELS]
    assert len(keys) == 5
    for number, key in reversed(list(enumerate(keys, start=1))):     # Ctrl+5 ... Ctrl+1
        qtbot.keyClick(window, Qt.Key(Qt.Key_0 + number), Qt.ControlModifier)
        dock = window.docks[key]
        qtbot.waitUntil(lambda: not dock.widget().visibleRegion().isEmpty(), timeout=2000)
        qtbot.waitUntil(lambda: QApplication.focusWidget() is not None, timeout=2000)
        focus = QApplication.focusWidget()
        assert dock.isAncestorOf(focus), f"Ctrl+{number}: the keyboard is in {focus!r}, not in the {key} panel"


def test_settings_remember_the_last_config_checkpoint_and_data(make_window, ready_window, tmp_path, checkpoint):
    ready_window.training_panel.set_data_spec("folder:/somewhere/data")
    ready_window.close()
    settings = ready_window.settings
    assert settings.value("checkpoint/last") == str(checkpoint)
    assert settings.value("training/data") == "folder:/somewhere/data"
    assert settings.value("window/state") is not None
    again = make_window(load_checkpoint=False, checkpoint=None, config=None)
    assert again.training_panel.data_spec() == "folder:/somewhere/data"
    assert again.model_panel.config().name == "studiotest"


def test_trainer_events_reach_the_ui_coalesced_at_most_30_times_a_second(qtbot):
    from engine.events import StepMetrics
    from studio.engine_host import EngineHost
    from studio.sessions.training import TrainingRun
    host = EngineHost()
    session = host.training
    run = TrainingRun(session, {})
    running = threading.Event()
    run.thread = threading.Thread(target=running.wait, name="nlmm-test-trainer")   # a run going on
    run.thread.start()
    session.runs.append(run)
    session.timer.start()
    updates, steps = [], []
    run.update.connect(lambda u: (updates.append(time.perf_counter()), steps.extend(u.steps)))

    def flood():                            # the trainer's thread reports as fast as it can
        for step in range(1, 2001):
            run.on_event(StepMetrics(step, 1.0))
            if step % 100 == 0:
                time.sleep(0.05)
    started = time.perf_counter()
    feeder = threading.Thread(target=flood, name="nlmm-test-feeder")
    feeder.start()
    qtbot.waitUntil(lambda: len(steps) == 2000, timeout=20_000)
    elapsed = time.perf_counter() - started
    feeder.join()
    running.set()
    host.shutdown()
    assert [s.step for s in steps] == list(range(1, 2001)), "every step's values arrive, in order"
    assert len(updates) <= elapsed * 30 + 2, "at most ~30 updates a second"
    assert len(updates) < 200, "steps arrive coalesced, many per update"


def test_the_ui_bench_is_an_entry_point_of_its_own():
    """The bench drives the window through public methods only; the window's modules never import it."""
    import ast
    studio = ROOT / "studio"
    imports = {path.stem: {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
               for path in studio.glob("*.py")}
    assert "studio.app" not in imports["bench_ui"] and "studio.bench_ui" not in imports["main_window"]
    bench = (studio / "bench_ui.py").read_text()
    assert not re.search(r"\._[a-z]", bench), "no reaching into privates"
    # nor through a widget into the engine object it holds (it once read hands_free.listener.cutter)
    through = re.findall(r"\.(?:listener|trainer|retriever)\.\w+|\.cutter\b", bench)
    assert not through, f"the bench reaches through a widget into the engine: {through}"
    proc = subprocess.run([str(Path(sys.executable).with_name("nlmm-studio-bench")), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--seconds" in proc.stdout, proc.stderr


def test_the_engine_host_leaves_the_process_wide_settings_to_the_entry_points():
    """Garbage collection policy and the like are set by studio.bootstrap, not as a side effect of a host."""
    code = ("import gc, os; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PySide6.QtWidgets import QApplication; app = QApplication([])\n"
            "from studio.engine_host import EngineHost\n"
            "host = EngineHost(); assert gc.isenabled(), 'EngineHost switched garbage collection off'\n"
            "host.shutdown()\n"
            "from studio import bootstrap; bootstrap.configure(app)\n"
            "assert not gc.isenabled(), 'the entry points collect on the UI thread only'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_ui_thread_never_imports_torch():
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "import studio.main_window, studio.app, studio.panels.model_panel\n"
            "assert 'torch' not in sys.modules, 'the window modules import torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_settings_holding_a_non_integer_gallery_size_do_not_stop_the_launch(make_window, tmp_path):
    """The studio aborted at every launch once its settings held a non-integer gallery/size."""
    from PySide6.QtCore import QSettings
    stale = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)  # the file make_window opens
    stale.setValue("gallery/size", "about 300")
    stale.setValue("window/layout_version", "two")
    stale.sync()
    window = make_window(load_checkpoint=False, gallery_size=None)
    assert window.isVisible() and window.retrieval_panel.gallery_picker.size.value() == 200  # the default


def test_settings_of_the_wrong_kind_do_not_stop_the_launch(make_window, tmp_path):
    """A window geometry or layout that is not bytes aborted the studio at every launch (exit 134); a
    list where a path belongs (an ini file reads "a, b" as one) is the default too."""
    from PySide6.QtCore import QSettings
    stale = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    stale.setValue("window/geometry", "not bytes")
    stale.setValue("window/state", 12)
    stale.setValue("window/layout_version", 2)
    stale.setValue("checkpoint/last", ["a", "b"])
    stale.setValue("gallery/source", 42)
    stale.setValue("dataset/folder", ["x", "y"])
    stale.sync()
    window = make_window(load_checkpoint=False, gallery_size=None)
    assert window.isVisible()
    assert window.retrieval_panel.dataset.path.text() == ""


def test_closing_the_studio_removes_its_temporary_folder(make_window, tmp_path):
    """Every launch left an empty /tmp/nlmm-studio-* behind (23 after one test run)."""
    import tempfile
    from PySide6.QtGui import QColor, QImage
    folders = lambda: set(Path(tempfile.gettempdir()).glob("nlmm-studio-*"))  # noqa: E731
    before = folders()
    window = make_window(load_checkpoint=False)
    [created] = folders() - before
    image = QImage(16, 16, QImage.Format_RGB32)
    image.fill(QColor("white"))
    window.retrieval_panel.query_qimage(image)  # a pasted image is written there
    assert [p.suffix for p in created.iterdir()] == [".png"]
    window.close()
    assert not created.exists()
