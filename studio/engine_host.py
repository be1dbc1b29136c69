"""The engine host: the studio's threads, and the only door from the UI to the engine.

    UI thread                        engine thread (TaskThread)                trainer thread
    ─────────                        ──────────────────────────                ──────────────
    host.retrieval.query(...) ─Task─▶ Retriever.query ──▶ task.result (QueryAnswer)
    host.training.start(...) ─TrainingRun─▶ loads data, builds the Trainer ──▶ Trainer.run()
    session's flush timer (≤ 30 Hz) ◀────────────── events buffered under a lock ─── (subscriber)
    panels ◀── each handle's signals, queued to the UI thread by Qt

    files thread (TaskThread): run logs (the run history, a run's curves), never torch

The engine thread does everything that touches torch, in the order asked; training runs on a thread of
its own (`studio.sessions.training`) so that queries are answered while a run goes on. The UI thread never
imports torch. Control that must not wait behind long work (pause / resume / stop, cancel) only sets
thread-safe flags on the handle, so it acts at once.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from studio import gc_guard
from studio.sessions.retrieval import RetrievalSession
from studio.sessions.training import TrainingSession
from studio.tasks import Relay, Task, TaskThread


def _start_engine(device: str | None):
    """First work of the engine thread: torch loads here, not on the UI thread."""
    import torch
    from engine.events import EngineReady
    from studio.bootstrap import leave_a_core_for_the_ui
    leave_a_core_for_the_ui()
    cuda = torch.cuda.is_available()
    return EngineReady(device or str(torch.device("cuda" if cuda else "cpu")), cuda,
                       "" if cuda else "PyTorch sees no CUDA GPU on this machine")


def _count_parameters(cfg_dict: dict) -> int | None:
    from engine.config import ConfigError, config_from_dict
    from engine.models.nlmm import NLMM
    try:
        return NLMM.count_parameters(config_from_dict(cfg_dict))
    except (ConfigError, ValueError):   # an invalid config simply has no count; the form shows why
        return None


class EngineHost(QObject):
    failed = Signal(str, str)           # a task's title and one-line error, for the status bar

    def __init__(self, parent: QObject | None = None, device: str | None = None,
                 corrections_folder: str | None = None):
        super().__init__(parent)
        self.closed = False
        self.live: set[Task] = set()        # queued or running: cancelled on shutdown
        self.relay = Relay(self)
        self.engine_thread = TaskThread("nlmm-engine")
        self.files_thread = TaskThread("nlmm-files")
        self.retrieval = RetrievalSession(self, device, corrections_folder)
        self.training = TrainingSession(self, device)
        self.engine_thread.start()
        self.files_thread.start()
        self.started = self.submit("engine", lambda task: _start_engine(device), settle=True)

    # ------------------------------------------------------------------ tasks
    def submit(self, title: str, work, files: bool = False, settle: bool = False) -> Task:
        """A Task doing `work(task)` on the engine thread (`files`: on the files thread, for work without torch)."""
        return self.enqueue(Task(title, work, self.relay, self), files=files, settle=settle)

    def enqueue(self, task: Task, files: bool = False, settle: bool = False) -> Task:
        """Queues `task` at once (its signals reach the UI thread on a later turn of its event loop, so the
        caller still connects to them first). `settle`: what the work leaves behind lives long (a model, a
        gallery) and is frozen out of the garbage collector's way once it is done (studio/gc_guard.py)."""
        task.error.connect(lambda message, title=task.title: self.failed.emit(title, message))
        task.finished.connect(lambda: self._retire(task))
        if settle:   # while it runs, garbage collections wait (they would scan all it built so far)
            ran = []   # finished also comes for a task cancelled before it started

            def began() -> None:
                ran.append(True)
                gc_guard.long_work(True)

            def ended() -> None:
                if ran:
                    gc_guard.long_work(False)
                QTimer.singleShot(0, gc_guard.settle)
            task.started.connect(began)
            task.finished.connect(ended)
        self.live.add(task)
        if not self.closed:
            (self.files_thread if files else self.engine_thread).tasks.put(task)
        return task

    def _retire(self, task: Task) -> None:
        """UI thread, as `finished` is emitted there: deleted once its receivers returned, never elsewhere."""
        self.live.discard(task)
        task.deleteLater()

    def count_parameters(self, cfg_dict: dict) -> Task:
        """The model's parameter count (int), or None when the config is invalid."""
        return self.submit("parameter count", lambda task: _count_parameters(cfg_dict))

    # ------------------------------------------------------------------ state and shutdown
    def threads(self) -> list[str]:
        """Names of the engine's threads still running (empty once shut down)."""
        running = [t.objectName() for t in (self.engine_thread, self.files_thread) if t.isRunning()]
        return running + self.training.threads()

    def shutdown(self, timeout_s: float = 60.0) -> bool:
        """Stop training (the trainer saves its checkpoint on the way out), cancel every task, end the
        threads. Returns False only when something did not finish within `timeout_s`."""
        if self.closed:
            return True
        self.closed = True
        deadline = time.monotonic() + timeout_s
        self.training.timer.stop()
        self.training.stop_all()
        for task in list(self.live):
            task.cancel()
        trained = self.training.join(timeout_s)
        ended = True
        for thread in (self.engine_thread, self.files_thread):
            thread.tasks.put(None)     # run() returns once the task in hand (if any) is done
            ended = thread.wait(max(100, int(1000 * (deadline - time.monotonic())))) and ended
        return trained and ended
