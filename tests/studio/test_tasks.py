"""The task protocol between the UI and the engine: each request's own signals, in order, on the UI thread;
errors as one line; cancel before or during the work; tasks deleted on the UI thread only."""
from __future__ import annotations

import threading

import pytest


@pytest.fixture
def host(qtbot):
    from studio.engine_host import EngineHost
    host = EngineHost()
    yield host
    assert host.shutdown()
    assert not host.threads()


def _record(task) -> list:
    seen = []
    task.started.connect(lambda: seen.append(("started", threading.current_thread().name)))
    task.progress.connect(lambda done, total: seen.append(("progress", done, total)))
    task.result.connect(lambda value: seen.append(("result", value)))
    task.error.connect(lambda message: seen.append(("error", message)))
    task.cancelled.connect(lambda: seen.append(("cancelled",)))
    task.finished.connect(lambda: seen.append(("finished",)))
    return seen


def test_a_task_reports_started_progress_result_finished_in_order_on_the_ui_thread(host, qtbot):
    ran_on = []

    def work(task):
        ran_on.append(threading.current_thread())
        for i in range(3):
            task.report(i + 1, 3)
        return {"answer": 42}
    task = host.submit("sum", work)
    seen = _record(task)
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] == ("finished",), timeout=30_000)
    assert ran_on[0] is not threading.main_thread(), "the work runs on the engine thread"
    assert seen[0] == ("started", threading.main_thread().name), "signals arrive on the UI thread"
    assert seen[-2:] == [("result", {"answer": 42}), ("finished",)]
    assert ("progress", 3.0, 3.0) in seen, "the last progress report always arrives"


def test_a_failing_task_says_why_in_one_line_and_the_thread_goes_on(host, qtbot):
    failures = []
    host.failed.connect(lambda title, message: failures.append((title, message)))
    bad = host.submit("broken", lambda task: {}["missing"])
    seen = _record(bad)
    after = host.submit("after", lambda task: "still answering")
    later = _record(after)
    qtbot.waitUntil(lambda: bool(later) and later[-1] == ("finished",), timeout=30_000)
    assert [s[0] for s in seen] == ["started", "error", "finished"]
    assert seen[1] == ("error", "KeyError: 'missing'") and failures == [("broken", "KeyError: 'missing'")]
    assert ("result", "still answering") in later


def test_cancel_while_queued_or_while_working_ends_cancelled(host, qtbot):
    gate, working = threading.Event(), threading.Event()

    def long_work(task):
        working.set()
        while True:
            gate.wait(0.01)
            task.report(0, 0)               # raises Cancelled once cancelled
    running = host.submit("long", long_work)
    queued = host.submit("queued", lambda task: "never")
    seen_running, seen_queued = _record(running), _record(queued)
    qtbot.waitUntil(working.is_set, timeout=30_000)
    queued.cancel()
    running.cancel()
    qtbot.waitUntil(lambda: bool(seen_queued) and seen_queued[-1] == ("finished",), timeout=30_000)
    assert seen_running[-2:] == [("cancelled",), ("finished",)]
    assert seen_queued == [("cancelled",), ("finished",)], "a task cancelled in the queue never starts"


def test_finished_tasks_are_deleted_on_the_ui_thread(host, qtbot):
    from shiboken6 import isValid
    task = host.submit("short", lambda task: 1)
    done = _record(task)
    qtbot.waitUntil(lambda: bool(done) and done[-1] == ("finished",), timeout=30_000)
    assert task not in host.live
    qtbot.waitUntil(lambda: not isValid(task), timeout=5_000)      # deleteLater, on the UI thread's loop


def test_a_receiver_connected_after_a_short_task_ran_still_gets_its_outcome(host, qtbot):
    """The request and the connections are made in one slot; a short task may be done before that slot
    returns — its signals are emitted on the UI thread, later, so none is missed."""
    ran = threading.Event()
    task = host.submit("short", lambda task: ran.set() or "done")
    assert ran.wait(30), "the task ran before anyone connected to it"
    seen = _record(task)
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] == ("finished",), timeout=30_000)
    assert [s[0] for s in seen] == ["started", "result", "finished"] and seen[1] == ("result", "done")
