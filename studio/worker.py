"""The engine worker: the only place the studio touches the engine's models, off the UI thread.

    UI thread                              engine QThread                       trainer thread
    ─────────                              ──────────────                       ──────────────
    EngineHost.query(...) ─request queue─▶ EngineWorker.query() ─▶ Retriever
    EngineHost.start_training(...) ──────▶ EngineWorker.start_training()
                                             builds the Trainer (loads data) ──▶ Trainer.run()
    flush timer (≤ 30 Hz) ◀──────────────── events appended under a lock ─────── (subscriber)
    panels ◀── signals carrying plain dicts and numpy copies (queued to the UI thread by Qt)

One `EngineWorker` works in a `QThread` (`EngineThread`) and owns the device, the trainer and the
retriever. Requests go into a queue that the engine thread works through in order; results leave as Qt
signals whose payloads are plain Python / numpy copies (emitted on the engine thread, Qt queues them to
the UI's slots). Training runs on a helper thread the worker owns, so the engine thread stays free to
answer queries while a run goes on. The trainer's events are coalesced and drained by a UI timer at most
~30 times a second, whatever the step rate, with every step's values kept for the curves.

Why the engine thread's run() is a Python loop over a queue, not an event loop delivering queued slots:
PySide wraps each slot call that Qt makes on a thread in its own short-lived Python thread state, and
PyTorch's pybind11 code keeps a pointer to the thread state it first saw; the next slot then segfaults
(seen with PySide6 6.12: torch imported in one queued slot, torchaudio in the next; and with run()
calling exec(), a crash while training). One Python call — run() — that never returns to Qt until
shutdown keeps a single thread state for the thread's whole life, as a Python thread would.

Control that must not wait behind long work (pause / resume / stop training, cancel a gallery) only
sets thread-safe flags, so `EngineHost` calls those directly instead of queueing them.
"""
from __future__ import annotations

import functools
import queue
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from studio import gc_guard

FLUSH_INTERVAL_MS = 33      # ≤ 30 updates a second reach the UI
PROGRESS_INTERVAL_S = 0.05  # progress reports at most 20 times a second


class Cancelled(Exception):
    """Raised inside a progress callback to abandon long work the user cancelled."""


def one_line(err: BaseException) -> str:
    """The engine's errors are already one line; anything else gets its type and first line."""
    from engine.errors import USER_ERRORS
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(err, USER_ERRORS) or (isinstance(err, ValueError) and first):
        return first
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def reports_errors(topic: str):
    """A worker slot never lets an exception escape: it becomes `error(topic, message)`."""
    def wrap(fn):
        @functools.wraps(fn)
        def slot(self, *args):
            try:
                return fn(self, *args)
            except Cancelled:
                self.task_finished.emit(topic, "cancelled")
            except Exception as err:  # noqa: BLE001 - every failure must reach the user, not kill the thread
                from engine.errors import USER_ERRORS
                if not isinstance(err, USER_ERRORS):  # a bad file is the user's news, not a bug to trace
                    traceback.print_exc()
                self.error.emit(topic, one_line(err))
                self.task_finished.emit(topic, "failed")
        return slot
    return wrap


def _compact_step(event: dict) -> dict:
    keep = ("step", "total_steps", "loss", "pair_losses", "stepped_levels", "lrs", "samples_per_s", "eta_s")
    return {k: event.get(k) for k in keep}


def leave_a_core_for_the_ui() -> None:
    """Big work (training, galleries) runs on one core fewer than the process may use; queries run on one
    thread (engine.threads). With all cores busy in torch, the UI thread's painting preempts a worker of a
    parallel region and the others wait for it at the barrier; on 2 cores that made training 3x slower in
    the studio and the UI stutter."""
    import torch
    from engine.threads import reserve_cores, work_threads
    reserve_cores(1)
    torch.set_num_threads(work_threads())


def sample_items(items: list, limit: int) -> list:
    """At most `limit` items spread evenly over the list (labels stay mixed)."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    stride = len(items) / limit
    return [items[int(i * stride)] for i in range(limit)]


class EngineWorker(QObject):
    # ---------------------------------------------------------------- results (all payloads are copies)
    error = Signal(str, str)                        # topic, one-line message
    task_finished = Signal(str, str)                # topic, "done" | "cancelled" | "failed"
    progress = Signal(str, float, float)            # topic, done, total
    device_info = Signal(object)                    # {"device", "cuda", "cuda_reason"}
    parameter_count = Signal(int, object)           # request id, count (or None when the config is invalid)
    training_started = Signal(object)               # out_dir, total_steps, levels, chunk_sizes, name
    training_update = Signal(object)                # steps [..], evals [..], warnings [..], memory (latest) | None
    training_state = Signal(str)                    # "paused" | "resumed"
    training_finished = Signal(object)              # kind, step, message, checkpoint
    checkpoint_loaded = Signal(object)              # path, name, config (dict), L_mem
    gallery_ready = Signal(object)                  # source, sizes {modality: n}
    query_done = Signal(object)                     # modality, query, results {m: [hit dicts]}, latency_ms, adapt
    memory = Signal(object)                         # source, snapshot {...}, writes [...]
    dataset_added = Signal(object)                  # root, row

    def __init__(self, device: str | None = None):
        super().__init__()
        self.device_name = device
        self.trainer = None
        self.retriever = None
        self.gallery_source = ""
        self.train_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: dict = self._empty_pending()
        self._final: dict | None = None
        self._cancel = {"gallery": threading.Event(), "training": threading.Event()}

    @staticmethod
    def _empty_pending() -> dict:
        return {"steps": [], "evals": [], "warnings": [], "checkpoints": [], "states": [], "memory": None}

    # ---------------------------------------------------------------- requests, on the engine thread
    def dispatch(self, name: str, args) -> None:
        """Every request arrives here, in order, on the engine thread; each method reports its own errors."""
        getattr(self, name)(*args)

    # ---------------------------------------------------------------- set-up on the engine thread
    def start(self) -> None:
        """Runs first on the engine thread: torch loads here, not on the UI thread."""
        try:
            import torch
            leave_a_core_for_the_ui()
            cuda = torch.cuda.is_available()
            reason = "" if cuda else "PyTorch sees no CUDA GPU on this machine"
            device = str(torch.device("cuda" if cuda else "cpu")) if not self.device_name else self.device_name
            self.device_info.emit({"device": device, "cuda": cuda, "cuda_reason": reason})
        except Exception as err:  # noqa: BLE001
            self.error.emit("engine", f"PyTorch could not start: {one_line(err)}")

    # ---------------------------------------------------------------- model & levels
    def count_parameters(self, request: int, cfg_dict: dict) -> None:
        """Builds the model on the meta device: exact count, no memory, milliseconds even at 140 M."""
        try:
            import torch
            from engine.config import config_from_dict
            from engine.models.nlmm import NLMM
            cfg = config_from_dict(cfg_dict)
            with torch.device("meta"):
                count = NLMM(cfg).num_parameters()
        except Exception:  # noqa: BLE001 - an invalid config simply has no count; the form shows why
            count = None
        self.parameter_count.emit(request, count)

    # ---------------------------------------------------------------- training
    def is_training(self) -> bool:
        return self.train_thread is not None and self.train_thread.is_alive()

    @reports_errors("training")
    def start_training(self, request: dict) -> None:
        """request: config (dict), data (spec or DataSplits), out_dir (optional), steps, resume."""
        if self.is_training():
            raise RuntimeError("a training run is already going; stop it first")
        from engine.config import config_from_dict
        from engine.data.sources import load_source
        from engine.training.trainer import Trainer
        cfg = config_from_dict(request["config"])
        self.progress.emit("training", 0, 0)  # busy: loading the data and building the model
        report = self._progress_reporter("training")
        data = request.get("data", "builtin")
        if isinstance(data, str):           # loading looks at every file: progress, and Stop cancels it
            data = load_source(data, progress=report)
        self._raise_if_cancelled("training")   # before the model is built
        self.progress.emit("training", 0, 0)  # busy: building the model
        trainer = Trainer(cfg, data=data, out_dir=request.get("out_dir") or None,
                          device=request.get("device") or self.device_name, steps=request.get("steps"),
                          resume=bool(request.get("resume")), tensorboard=False)
        self._raise_if_cancelled("training")   # Stop (or the window closed) while the model was built
        trainer.subscribe(self._on_training_event)
        with self._lock:
            self._pending, self._final = self._empty_pending(), None
        self.trainer = trainer
        self.training_started.emit({"out_dir": str(trainer.out_dir), "total_steps": trainer.total_steps,
                                    "start_step": trainer.step, "name": trainer.cfg.name,
                                    "levels": [level.name for level in trainer.cfg.cms_levels],
                                    "chunk_sizes": [level.chunk_size for level in trainer.cfg.cms_levels],
                                    "device": str(trainer.device)})
        self.train_thread = threading.Thread(target=self._run_training, name="nlmm-trainer", daemon=True)
        self.train_thread.start()

    def _run_training(self) -> None:
        leave_a_core_for_the_ui()
        try:
            final = self.trainer.run()
        except Exception as err:  # noqa: BLE001 - a crash in the loop must still reach the user
            traceback.print_exc()
            final = {"kind": "failed", "step": getattr(self.trainer, "step", 0),
                     "message": one_line(err), "checkpoint": None}
        with self._lock:
            self._final = final

    def _on_training_event(self, event: dict) -> None:
        """Trainer thread: only copy into the pending buffer; the flush timer does the rest."""
        kind = event["kind"]
        with self._lock:
            pending = self._pending
            if kind == "step":
                pending["steps"].append(_compact_step(event))
            elif kind == "eval":
                pending["evals"].append({"step": event["step"], "recall": event["recall"]})
            elif kind == "memory":
                pending["memory"] = {"source": "training", "step": event["step"], "snapshot": event["snapshot"]}
            elif kind == "warning":
                pending["warnings"].append(event["message"])
            elif kind == "checkpoint":
                pending["checkpoints"].append(event["path"])
            elif kind in ("paused", "resumed"):
                pending["states"].append(kind)

    def flush(self) -> None:
        """UI thread, from the host's timer: hand over everything the trainer reported since last time."""
        with self._lock:
            pending, self._pending = self._pending, self._empty_pending()
            final = self._final if not (self.train_thread and self.train_thread.is_alive()) else None
            if final is not None:
                self._final = None
        if pending["steps"] or pending["evals"] or pending["warnings"] or pending["checkpoints"] \
                or pending["memory"] is not None:
            self.training_update.emit(pending)
            if pending["memory"] is not None:
                self.memory.emit(pending["memory"])
        for state in pending["states"]:
            self.training_state.emit(state)
        if final is not None:
            self.train_thread = None
            self.training_finished.emit(dict(final))
            if final.get("kind") == "failed":
                self.error.emit("training", final.get("message", "training failed"))

    # thread-safe control: called directly from the UI thread (only sets the trainer's flags)
    def pause_training(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def resume_training(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    def stop_training(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()

    def cancel(self, topic: str) -> None:
        """Abandon the long work of `topic` ("gallery": embedding one; "training": loading a run's data)."""
        self._cancel[topic].set()

    def clear_cancel(self, topic: str) -> None:
        self._cancel[topic].clear()

    def _raise_if_cancelled(self, topic: str) -> None:
        if self._cancel[topic].is_set():
            raise Cancelled()

    def join_training(self, timeout: float) -> bool:
        thread = self.train_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ---------------------------------------------------------------- retrieval
    def _progress_reporter(self, topic: str):
        last = [0.0]

        def report(done: float, total: float) -> None:
            self._raise_if_cancelled(topic)
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_INTERVAL_S or done >= total:
                last[0] = now
                self.progress.emit(topic, float(done), float(total))
        return report

    @reports_errors("checkpoint")
    def load_checkpoint(self, path: str) -> None:
        from engine.config import config_to_dict
        from engine.retrieval import Retriever
        self.progress.emit("checkpoint", 0, 0)
        retriever = Retriever.from_checkpoint(path, self.device_name)
        self.retriever = retriever
        cfg = retriever.cfg
        self.checkpoint_loaded.emit({"path": str(path), "name": cfg.name, "config": config_to_dict(cfg),
                                     "L_mem": cfg.L_mem, "device": str(retriever.device)})
        self.task_finished.emit("checkpoint", "done")
        self._emit_memory()

    @reports_errors("gallery")
    def build_gallery(self, source: str, split: str, limit: int) -> None:
        """Embeds `limit` items of `source`'s split ("all": every split) as the gallery queries search; the
        previous gallery stays until the new one is complete."""
        if self.retriever is None:
            raise RuntimeError("load a checkpoint first")
        from engine.data.dataset import SPLITS
        from engine.data.sources import load_source
        self.progress.emit("gallery", 0, 0)
        report = self._progress_reporter("gallery")
        data = load_source(source, progress=report)
        if split == "all":
            items = [item for name in SPLITS for item in data.splits.get(name, [])]
        else:
            items = data.splits.get(split, [])
        items = sample_items(items, limit)
        if not items:
            raise RuntimeError(f"{source}: no items in its '{split}' split to search")
        self.retriever.build_gallery(items, progress=report)
        self.gallery_source = source
        self.gallery_ready.emit({"source": source, "split": split, "sizes": self.retriever.gallery_sizes()})
        self.task_finished.emit("gallery", "done")

    @reports_errors("query")
    def query(self, request: dict) -> None:
        """request: modality, value (path, text, or (float32 waveform, rate)), k, adapt, tag."""
        if self.retriever is None:
            raise RuntimeError("no model loaded: load a checkpoint first")
        if not self.retriever.galleries:
            raise RuntimeError("the gallery is not built yet")
        value = request["value"]
        if isinstance(value, (tuple, list)):
            value = (np.asarray(value[0], dtype=np.float32), int(value[1]))
        adapt = bool(request.get("adapt"))
        result = self.retriever.query(request["modality"], value, k=int(request.get("k", 5)), adapt=adapt)
        self.query_done.emit({"modality": result.modality, "query": result.query, "adapt": adapt,
                              "tag": request.get("tag"), "latency_ms": result.latency_ms,
                              "results": {m: [hit.as_dict() for hit in hits] for m, hits in result.results.items()}})
        self._emit_memory()

    @reports_errors("memory")
    def reset_memory(self) -> None:
        if self.retriever is not None:
            self.retriever.reset_memory()
            self._emit_memory()

    def _emit_memory(self) -> None:
        if self.retriever is None:
            return
        snapshot = self.retriever.memory_snapshot()
        writes = [{"index": w.index, "modality": w.modality, "slots": w.slots.copy(), "change": w.change.copy()}
                  for w in self.retriever.model.memory.writes_since(max(0, snapshot["write_count"] - 1))]
        self.memory.emit({"source": "retrieval", "step": snapshot["write_count"], "snapshot": snapshot,
                          "writes": writes})

    @reports_errors("dataset")
    def add_to_dataset(self, request: dict) -> None:
        """request: root, image (path) | None, text, audio ((wave, rate) or path) | None, label."""
        from engine.data.folder import FolderWriter
        audio, rate = request.get("audio"), 16000
        if isinstance(audio, (tuple, list)):
            audio, rate = np.asarray(audio[0], dtype=np.float32), int(audio[1])
        row = FolderWriter(request["root"]).add(image=request.get("image"), text=request.get("text") or None,
                                                audio=audio, sample_rate=rate, label=request.get("label") or None)
        self.dataset_added.emit({"root": str(request["root"]), "row": row})


class EngineThread(QThread):
    """The engine's thread: run() works through the request queue in order until it gets None."""

    def __init__(self, worker: EngineWorker):
        super().__init__()
        self.worker = worker
        self.jobs: queue.Queue = queue.Queue()

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            name, args = job
            self.worker.dispatch(name, args)


class EngineHost(QObject):
    """The UI side of the worker: owns the engine thread, queues requests, ends everything cleanly."""

    def __init__(self, parent: QObject | None = None, device: str | None = None):
        super().__init__(parent)
        gc_guard.install()  # cyclic garbage (Qt widgets among it) is freed on the UI thread only
        self.worker = EngineWorker(device)
        self.thread = EngineThread(self.worker)
        self.thread.setObjectName("nlmm-engine")
        # The worker's methods run on the engine thread, but its Qt affinity stays with the UI thread on
        # purpose: Qt then queues its signals to every receiver, plain Python callables included, on the
        # UI thread (a callable connected to an object of the engine thread would run there instead).
        self._request = 0
        self.closed = False
        # Trainer events are drained here, on the UI thread, at most ~30 times a second.
        self.flush_timer = QTimer(self)
        self.flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self.flush_timer.timeout.connect(self.worker.flush)
        self.worker.training_started.connect(lambda _: self.flush_timer.start())
        self.worker.training_finished.connect(lambda _: self.flush_timer.stop())
        # what long work leaves behind lives long: out of the full collections' way (studio/gc_guard.py)
        for done in (self.worker.device_info, self.worker.checkpoint_loaded, self.worker.gallery_ready,
                     self.worker.training_started):
            done.connect(lambda *_: QTimer.singleShot(0, gc_guard.settle))   # after the panels drop old items
        self.thread.start()
        self._submit("start")

    def _submit(self, name: str, *args) -> None:
        if not self.closed:
            self.thread.jobs.put((name, args))

    # requests (queued onto the engine thread)
    def count_parameters(self, cfg_dict: dict) -> int:
        self._request += 1
        self._submit("count_parameters", self._request, cfg_dict)
        return self._request

    def start_training(self, config: dict, data, out_dir: str | None = None, steps: int | None = None,
                       device: str | None = None) -> None:
        self.worker.clear_cancel("training")
        self._submit("start_training", {"config": config, "data": data, "out_dir": out_dir, "steps": steps,
                                        "device": device})

    def load_checkpoint(self, path: str) -> None:
        self._submit("load_checkpoint", str(path))

    def build_gallery(self, source: str, split: str = "test", limit: int = 100) -> None:
        self.worker.clear_cancel("gallery")
        self._submit("build_gallery", source, split, int(limit))

    def query(self, modality: str, value, k: int = 5, adapt: bool = False, tag=None) -> None:
        self._submit("query", {"modality": modality, "value": value, "k": k, "adapt": adapt, "tag": tag})

    def reset_memory(self) -> None:
        self._submit("reset_memory")

    def add_to_dataset(self, root: str, image=None, text=None, audio=None, label=None) -> None:
        self._submit("add_to_dataset", {"root": root, "image": image, "text": text, "audio": audio,
                                        "label": label})

    # control (thread-safe flags, not queued: they must not wait behind the work they control)
    def pause_training(self) -> None:
        self.worker.pause_training()

    def resume_training(self) -> None:
        self.worker.resume_training()

    def stop_training(self) -> None:
        self.worker.stop_training()

    def cancel(self, topic: str = "gallery") -> None:
        self.worker.cancel(topic)

    def is_training(self) -> bool:
        return self.worker.is_training()

    def threads(self) -> list[str]:
        """Names of the engine's threads still running (empty once shut down)."""
        running = [self.thread.objectName()] if self.thread.isRunning() else []
        train = self.worker.train_thread
        return running + ([train.name] if train is not None and train.is_alive() else [])

    def shutdown(self, timeout_s: float = 60.0) -> bool:
        """Stop training (the trainer saves its checkpoint on the way out), cancel long work, end the
        engine thread. Returns False only when something did not finish within `timeout_s`."""
        if self.closed:
            return True
        self.closed = True
        self.flush_timer.stop()
        self.worker.stop_training()
        for topic in ("gallery", "training"):
            self.worker.cancel(topic)
        deadline = time.monotonic() + timeout_s
        trained = self.worker.join_training(timeout_s)
        self.thread.jobs.put(None)  # run() returns once the request in hand (if any) is done
        ended = self.thread.wait(max(100, int(1000 * (deadline - time.monotonic()))))
        return trained and ended
