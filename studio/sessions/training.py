"""The training session: owns the trainer thread. Each run is a `TrainingRun`, a task handle whose work (on
the engine thread) loads the data and builds the Trainer, then hands the loop to a thread of its own, so the
engine thread stays free to answer queries while a run goes on.

The trainer's events arrive on its thread and are only buffered there, under a lock; the session's timer
drains the buffer on the UI thread at most ~30 times a second, whatever the step rate, and the run's
signals carry them on: `update` (every step's values kept, for the curves), `memory` (the newest frame),
`state_changed`, and at the end `result` (RunEnded) then `finished`.
"""
from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from studio import gc_guard
from studio.tasks import Task, one_line

FLUSH_INTERVAL_MS = 33      # ≤ 30 updates a second reach the UI


@dataclass(frozen=True)
class TrainingUpdate:
    """What a run reported since the last update."""
    steps: tuple = ()            # StepMetrics, in step order
    evaluations: tuple = ()      # Evaluation
    warnings: tuple = ()         # messages (a bad file: once per file)
    checkpoints: tuple = ()      # paths written


class TrainingRun(Task):
    began = Signal(object)          # RunStarted: data loaded, model built, the first step is next
    update = Signal(object)         # TrainingUpdate
    memory = Signal(object)         # MemoryFrame of the training model, the newest
    state_changed = Signal(str)     # "paused" | "resumed"
    # inherited: started, progress (loading the data), result (RunEnded: finished / stopped / failed),
    # error (the run could not start), cancelled (stopped before it began), finished

    def __init__(self, session: "TrainingSession", request: dict):
        super().__init__("training", self._prepare, session.host.relay, session)
        self.session, self.request = session, request
        self.trainer = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: dict = self._empty()
        self._final = None

    @staticmethod
    def _empty() -> dict:
        return {"steps": [], "evaluations": [], "warnings": [], "checkpoints": [], "states": [], "memory": None}

    # ------------------------------------------------------------------ control (any thread: flags only)
    def pause(self) -> None:
        with self._lock:
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self) -> None:
        with self._lock:
            if self.trainer is not None:
                self.trainer.resume()

    def stop(self) -> None:
        """Before the run began: abandon loading (cancelled). Once it runs: stop after this step and save."""
        with self._lock:
            self.cancel()
            if self.trainer is not None:
                self.trainer.stop()

    def is_alive(self) -> bool:
        thread = self.thread
        return thread is not None and thread.is_alive()

    # ------------------------------------------------------------------ engine thread
    def _prepare(self, task: Task):
        from engine.config import config_from_dict
        from engine.data.sources import load_source
        from engine.events import RunStarted
        from engine.training.trainer import Trainer
        if self.session.is_training():
            raise RuntimeError("a training run is already going; stop it first")
        request = self.request
        init = request.get("init")
        if request["config"] is not None:
            cfg = config_from_dict(request["config"])
        else:                               # Teach: the model's own config, fine-tune settings
            from engine.training.init import fine_tune_config
            cfg = fine_tune_config(init, request.get("steps"), batch_size=request.get("batch_size"))
        self.report(0, 0)                   # busy: loading the data (every file is looked at)
        data = request["data"]
        if isinstance(data, str):
            data = load_source(data, progress=self.report)
        if request.get("teach_all"):
            from engine.data.mix import every_item_taught
            data = every_item_taught(data)
        self.check()
        self.report(0, 0)                   # busy: building the model
        trainer = Trainer(cfg, data=data, out_dir=request.get("out_dir"), device=request.get("device"),
                          steps=request.get("steps"), tensorboard=True, init=init)
        trainer.subscribe(self.on_event, memory_frames=True)
        with self._lock:
            self.check()                    # Stop (or the window closed) while the model was built
            self.trainer = trainer
            self.thread = threading.Thread(target=self._train, name="nlmm-trainer", daemon=True)
        return RunStarted(str(trainer.out_dir), trainer.total_steps, trainer.step, trainer.cfg.name,
                          tuple(level.name for level in trainer.cfg.cms_levels),
                          tuple(level.chunk_size for level in trainer.cfg.cms_levels), str(trainer.device),
                          tuple(trainer.cfg.train.learn_only) if trainer.frozen_parameters else ())

    def succeeded(self, started) -> None:
        """The run's outcome comes later, from the UI thread's flush; now the loop starts."""
        self.send(self.began, started)
        self.thread.start()

    # ------------------------------------------------------------------ trainer thread
    def _train(self) -> None:
        from engine.events import RunEnded
        from studio.bootstrap import leave_a_core_for_the_ui
        leave_a_core_for_the_ui()
        try:
            final = self.trainer.run()
        except Exception as err:  # noqa: BLE001 - a crash in the loop must still reach the user
            traceback.print_exc()
            final = RunEnded("failed", self.trainer.step, one_line(err))
        with self._lock:
            self._final = final

    def on_event(self, event) -> None:
        """Only copies into the buffer; the UI thread's flush does the rest."""
        with self._lock:
            pending = self._pending
            if event.kind == "memory":
                pending["memory"] = event
            elif event.kind in ("paused", "resumed"):
                pending["states"].append(event.kind)
            else:
                key = {"step": "steps", "eval": "evaluations", "checkpoint": "checkpoints"}.get(event.kind)
                if key is not None:
                    pending[key].append(event)
                elif event.kind == "warning":
                    pending["warnings"].append(event.message)

    # ------------------------------------------------------------------ UI thread
    def flush(self) -> bool:
        """Hands over what the trainer reported since the last flush; True once the run has ended."""
        with self._lock:
            pending, self._pending = self._pending, self._empty()
            final = self._final if not self.is_alive() else None
            if final is not None:
                self.trainer = None         # the model and its data are freed here, on the UI thread
        update = TrainingUpdate(tuple(pending["steps"]), tuple(pending["evaluations"]),
                                tuple(pending["warnings"]), tuple(c.path for c in pending["checkpoints"]))
        if update != TrainingUpdate():
            self.update.emit(update)
        if pending["memory"] is not None:
            self.memory.emit(pending["memory"])
        for state in pending["states"]:
            self.state_changed.emit(state)
        if final is None:
            return False
        self.result.emit(final)
        self.finished.emit()
        return True


class TrainingSession(QObject):
    submitted = Signal(object)      # a new TrainingRun, before its work starts: views follow it

    def __init__(self, host, device: str | None = None):
        super().__init__(host)
        self.host, self.device = host, device
        self.runs: list[TrainingRun] = []   # submitted and not yet ended
        self.timer = QTimer(self)
        self.timer.setInterval(FLUSH_INTERVAL_MS)
        self.timer.timeout.connect(self._flush)

    def start(self, config: dict | None, data, out_dir: str | None = None, steps: int | None = None,
              device: str | None = None, init: str | None = None, teach_all: bool = False,
              batch_size: int | None = None) -> TrainingRun:
        """config: the config as plain data; data: a source spec ("builtin", "folder:DIR") or DataSplits.
        Teach: `init` the checkpoint to fine-tune (config None: its own, with fine-tune settings), and
        with `teach_all` every item of the source is taught (none is kept apart for validation)."""
        run = TrainingRun(self, {"config": config, "data": data, "out_dir": out_dir, "steps": steps,
                                 "device": device or self.device, "init": init, "teach_all": teach_all,
                                 "batch_size": batch_size})
        run.finished.connect(lambda: run in self.runs and self.runs.remove(run))   # direct, or queued to here
        run.began.connect(lambda _: QTimer.singleShot(0, gc_guard.settle))   # the model and data live long
        self.runs.append(run)
        self.submitted.emit(run)
        self.host.enqueue(run)
        self.timer.start()
        return run

    def is_training(self) -> bool:
        return any(run.is_alive() for run in list(self.runs))

    def stop_all(self) -> None:
        for run in list(self.runs):
            run.stop()

    def join(self, timeout: float) -> bool:
        for run in list(self.runs):
            if run.thread is not None:
                run.thread.join(timeout)
        return not self.is_training()

    def threads(self) -> list[str]:
        return [run.thread.name for run in list(self.runs) if run.is_alive()]

    def _flush(self) -> None:
        for run in list(self.runs):
            if run.thread is not None:
                run.flush()             # a run that ended leaves `runs` on its `finished`
        if not self.runs:
            self.timer.stop()
