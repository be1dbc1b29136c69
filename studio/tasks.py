"""Typed tasks: each request to the engine is a `Task`, a handle with its own signals and cancel flag (in the
spirit of superqt's `thread_worker` and Orange's `ConcurrentWidgetMixin`), worked through in order by a
`TaskThread`.

    task = host.retrieval.query("text", "forty two")       # a Task; its work runs on the engine thread
    task.result.connect(show)       # the payload: a frozen dataclass of engine/events.py
    task.error.connect(complain)    # a one-line message
    task.cancel()                   # long work checks the flag at each progress report

Signals come in this order: started, progress*, then one of result / error / cancelled, then finished
(always, and last). The task's thread does not emit them itself: it hands each to the `Relay`, a QObject of
the UI thread, and the task emits it there, on a later turn of the UI's event loop. So a receiver
connected right after the request, in the same slot, never misses one (the task is queued at once, and
a short one may be done before the slot returns), and every receiver is called on the UI thread.

Why a TaskThread's run() is a Python loop over a queue, not an event loop delivering queued slots:
PySide wraps each slot call that Qt makes on a thread in its own short-lived Python thread state, and
PyTorch's pybind11 code keeps a pointer to the thread state it first saw; the next slot then segfaults
(seen with PySide6 6.12: torch imported in one queued slot, torchaudio in the next; and with run()
calling exec(), a crash while training). One Python call — run() — that never returns to Qt until
shutdown keeps a single thread state for the thread's whole life, as a Python thread would.

A Task is deleted on the UI thread only, by `deleteLater` once `finished` was emitted there: a QObject
destroyed on a worker thread, while the UI thread may still deliver its signals, can crash Qt. (An
earlier version emitted on the worker thread and deleted a task on its queued `finished`: Qt drops the
queued calls of a deleted sender, and receivers connected after the host's lost `finished`. Deferring the
queueing of a task instead, so that callers could connect first, cost ~15 % of the query rate.)
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
    from engine.errors import USER_ERRORS
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(err, USER_ERRORS) or (isinstance(err, ValueError) and first):
        return first
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


class Relay(QObject):
    """Carries a task's signals from the thread that works on it to the UI thread, where they are emitted."""
    carry = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.carry.connect(self._emit)  # queued: the relay lives on the UI thread, `carry` comes from elsewhere

    @staticmethod
    def _emit(call) -> None:
        signal, args = call
        signal.emit(*args)


class Task(QObject):
    started = Signal()
    progress = Signal(float, float)     # done, total (total 0: busy, no measure)
    result = Signal(object)
    error = Signal(str)                 # one line, for the user
    cancelled = Signal()
    finished = Signal()

    def __init__(self, title: str, work: Callable[["Task"], object], relay: Relay, parent: QObject | None = None):
        super().__init__(parent)
        self.title = title              # names the task in messages ("gallery: no items …")
        self._work = work
        self._relay = relay
        self._cancel = threading.Event()
        self._last_report = 0.0

    def send(self, signal, *args) -> None:
        """From the task's thread: `signal` is emitted with `args` on the UI thread, in the order sent."""
        self._relay.carry.emit((signal, args))

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
            self.send(self.progress, float(done), float(total))

    def run(self) -> None:
        if self._cancel.is_set():       # cancelled while it waited in the queue
            self.send(self.cancelled)
            self.send(self.finished)
            return
        self.send(self.started)
        try:
            value = self._work(self)
        except Cancelled:
            self.send(self.cancelled)
        except Exception as err:  # noqa: BLE001 - every failure must reach the user, not end the thread
            from engine.errors import USER_ERRORS
            if not isinstance(err, USER_ERRORS):  # a bad file is the user's news, not a bug to trace
                traceback.print_exc()
            self.send(self.error, one_line(err))
        else:
            self.succeeded(value)
            return
        self.send(self.finished)

    def succeeded(self, value) -> None:
        """The work returned `value`; a task whose outcome comes later (a training run) overrides this."""
        self.send(self.result, value)
        self.send(self.finished)


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
