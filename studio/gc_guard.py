"""Garbage collection on the UI thread only.

Python's cyclic garbage collector runs on whichever thread happens to allocate when a threshold is
crossed. In the studio that is often the engine or trainer thread (torch.load, batches), and a cycle it
frees may hold Qt widgets — a result row, a closed window's panels — whose destruction off the UI
thread crashes Qt (a segfault seen while the engine loaded a checkpoint). So automatic collection is
switched off and a UI-thread timer collects instead, generation by generation as the thresholds say.

A full collection scans every object: with torch and Qt loaded that took 150-177 ms here, a visible
freeze (the largest stall the studio had while training). So what long work leaves behind — torch's
modules once the engine started, a loaded model, a gallery, a trainer's data — is moved to the permanent
generation (`gc.freeze`) as soon as that work ends: full
collections then scan only what came after. Survivors of a full collection are frozen as well. The price:
a cycle among frozen objects that becomes garbage later is never freed — small, next to a UI stall.

While such long work runs (`long_work`), what it builds is not frozen yet, and a collection would scan it:
switching to a gallery of Flickr8k's size (88 000 items) froze the UI for 167 ms in a full collection, and
the young generations, which fill faster than a timer empties them, for up to 39 ms. So nothing is
collected until the work ends; its objects are then frozen without a scan and collection resumes.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 200

_guard = None


class GarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start()

    def check(self) -> None:
        c0, c1, c2 = gc.get_count()
        if _long_work:
            return
        if c0 > self.threshold[0]:
            generation = 2 if c2 > self.threshold[2] else 1 if c1 > self.threshold[1] else 0
            gc.collect(generation)
            if generation == 2:
                gc.freeze()


_long_work = 0   # long work running now (`long_work`): collections wait for it


def long_work(started: bool) -> None:
    """Long work building long-lived objects began (True) or ended (False); UI thread only."""
    global _long_work
    _long_work = max(0, _long_work + (1 if started else -1))


def settle() -> None:
    """After long work that built long-lived objects: freeze them without a scan. (Collecting the young
    generations first held the GIL for 65-97 ms after torch's import: they held hundreds of thousands
    of objects. A cycle of garbage among them is frozen too — the price, as above.)"""
    gc.freeze()


def install() -> GarbageCollector:
    """Once per process, after the QApplication exists; lives as long as the application."""
    global _guard
    if _guard is None:
        _guard = GarbageCollector(QCoreApplication.instance())
    return _guard
