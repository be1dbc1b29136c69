"""Cyclic garbage is collected by the UI thread's timer, never by a worker thread that allocates."""
import gc
import threading

from studio import gc_guard


class Cycle:
    def __init__(self):
        self.me = self


def test_automatic_collection_is_off_and_the_ui_timer_collects(qtbot):
    guard = gc_guard.install()
    assert not gc.isenabled() and guard.timer.isActive()
    collected_on = []
    gc.callbacks.append(lambda phase, info: phase == "stop" and collected_on.append(threading.current_thread()))
    try:
        def allocate():                       # far past every threshold, on another thread
            for _ in range(5 * guard.threshold[0]):
                Cycle()
        worker = threading.Thread(target=allocate)
        worker.start()
        worker.join()
        assert worker not in collected_on
        qtbot.waitUntil(lambda: threading.main_thread() in collected_on, timeout=5_000)
    finally:
        gc.callbacks.pop()


def test_no_collection_while_long_work_builds_and_one_after(qtbot, monkeypatch):
    """A collection scans what a gallery build made so far (up to 167 ms for 88 000 items): it waits."""
    guard = gc_guard.install()
    generations = []
    gc.callbacks.append(lambda phase, info: phase == "start" and generations.append(info["generation"]))
    monkeypatch.setattr(gc, "get_count", lambda: (10 ** 6, 10 ** 6, 10 ** 6))   # every threshold crossed
    try:
        gc_guard.long_work(True)
        guard.check()
        assert generations == []
        gc_guard.long_work(False)
        guard.check()
        assert generations == [2]
    finally:
        gc.callbacks.pop()
        gc_guard.long_work(False)
