"""Typed tasks: each request to the engine is a `Task`, a handle with its own signals and cancel flag (in the
spirit of superqt's `thread_worker` and Orange's `ConcurrentWidgetMixin`), worked through in order by a
`TaskThread`.

    task = host.retrieval.query("text", "forty two")       # a Task; its work runs on the engine thread
    task.result.connect(show)       # the payload: a frozen dataclass of engine/events.py
    task.error.connect(complain)    # a one-line message
    task.cancel()                   # long work checks the flag at each progress report

Signals come in this order: started, progress*, then one of result / error / cancelled, then finished
(always, and last). They are emitted on the task's thread; a Task belongs to the UI thread (its parent is
the host), so Qt queues every one of them to the UI thread, plain Python callables included.

Why a TaskThread's run() is a Python loop over a queue, not an event loop delivering queued slots:
PySide wraps each slot call that Qt makes on a thread in its own short-lived Python thread state, and
PyTorch's pybind11 code keeps a pointer to the thread state it first saw; the next slot then segfaults
(seen with PySide6 6.12: torch imported in one queued slot, torchaudio in the next; and with run()
calling exec(), a crash while training). One Python call — run() — that never returns to Qt until
shutdown keeps a single thread state for the thread's whole life, as a Python thread would.

A Task is deleted on the UI thread only: a QObject destroyed on a worker thread, while the UI thread may
still deliver its signals, can crash Qt. `released` follows `finished` from the same thread, so by the time
the host's slot for it runs, every receiver of `finished` has had it (posted events arrive in order), and
`deleteLater` there cannot drop a call still queued (Qt drops the queued calls of a deleted sender: tasks
deleted on `finished` itself lost the `finished` of later receivers).
"""
from __future__ import annotations

import queue
import threading
import time
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal

PROGRESS_INTERVAL_S = 0.05  # progress reports reach the UI at most 20 times a second


class Cancelled(Exception):
    """Raised inside a task's work (by `Task.report` / `Task.check`) once the user cancelled it."""


def one_line(err: BaseException) -> str:
    """The engine's errors are already one line; anything else gets its type and first line."""
    from engine.config import ConfigError
    from engine.data.errors import DataError
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    try:
        from engine.training.checkpoint import CheckpointError
        known = (ConfigError, DataError, CheckpointError)
    except ImportError:  # pragma: no cover - torch missing
        known = (ConfigError, DataError)
    if isinstance(err, known) or (isinstance(err, ValueError) and first):
        return first
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


class Task(QObject):
    started = Signal()
    progress = Signal(float, float)     # done, total (total 0: busy, no measure)
    result = Signal(object)
    error = Signal(str)                 # one line, for the user
    cancelled = Signal()
    finished = Signal()
    released = Signal()                 # the host's: after `finished`, when the task may be deleted

    def __init__(self, title: str, work: Callable[["Task"], object], parent: QObject | None = None):
        super().__init__(parent)
        self.title = title              # names the task in messages ("gallery: no items …")
        self._work = work
        self._cancel = threading.Event()
        self._last_report = 0.0

    # ------------------------------------------------------------------ any thread
    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------------ the task's thread, inside its work
    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def report(self, done: float, total: float) -> None:
        """Progress from inside the work (at most 20 a second reach the UI); raises Cancelled once cancelled."""
        self.check()
        now = time.perf_counter()
        if now - self._last_report >= PROGRESS_INTERVAL_S or (total and done >= total):
            self._last_report = now
            self.progress.emit(float(done), float(total))

    def run(self) -> None:
        if self._cancel.is_set():       # cancelled while it waited in the queue
            self.cancelled.emit()
            self.end()
            return
        self.started.emit()
        try:
            value = self._work(self)
        except Cancelled:
            self.cancelled.emit()
        except Exception as err:  # noqa: BLE001 - every failure must reach the user, not end the thread
            traceback.print_exc()
            self.error.emit(one_line(err))
        else:
            self.succeeded(value)
            return
        self.end()

    def succeeded(self, value) -> None:
        """The work returned `value`; a task whose outcome comes later (a training run) overrides this."""
        self.result.emit(value)
        self.end()

    def end(self) -> None:
        self.finished.emit()
        self.released.emit()


class TaskThread(QThread):
    """Works through its queue of tasks in order until it gets None."""

    def __init__(self, name: str):
        super().__init__()
        self.setObjectName(name)
        self.tasks: queue.Queue = queue.Queue()

    def run(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            try:
                task.run()
            except BaseException:  # noqa: BLE001 - last resort: the thread outlives any one task
                traceback.print_exc()
            del task
