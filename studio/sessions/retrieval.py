"""The retrieval session: owns the retrieval model (a `Retriever`) on the engine thread; every request is a
Task whose result is a frozen dataclass of `engine.events`.

The memory view follows every change of the central memory, whoever caused it (a load, a query, a
reset), through `memory_changed`; everything else goes back to the one who asked, on its own task.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.tasks import Task


class RetrievalSession(QObject):
    memory_changed = Signal(object)     # MemoryFrame, after a load, a query or a reset

    def __init__(self, host, device: str | None = None):
        super().__init__(host)
        self.host, self.device = host, device
        self.retriever = None           # touched on the engine thread only
        self.gallery = None             # (its items, GalleryReady): engine thread only
        self.learners = None            # the test-time learners chosen (None: the engine's default)

    # ------------------------------------------------------------------ requests (UI thread)
    def load_checkpoint(self, path: str) -> Task:
        """-> ModelLoaded. The gallery is built afresh for the new model (`build_gallery`)."""
        return self.host.submit("checkpoint", lambda task: self._load(task, str(path)), settle=True)

    def build_gallery(self, source: str, split: str = "test", limit: int = 100) -> Task:
        """-> GalleryReady. Progress while embedding; cancellable; the previous gallery answers until then."""
        return self.host.submit("gallery", lambda task: self._build_gallery(task, source, split, int(limit)),
                                settle=True)

    def query(self, modality: str, value, k: int = 5, adapt: bool = False) -> Task:
        """-> QueryAnswer. `value`: a path, text, or (float32 waveform, rate)."""
        return self.host.submit("query", lambda task: self._query(modality, value, int(k), bool(adapt)))

    def joint_map(self) -> Task:
        """-> JointMap: the gallery's embeddings projected to 2-D (PCA), to draw queries on."""
        return self.host.submit("joint space", lambda task: _joint_map(self._loaded()))

    def reset_memory(self) -> Task:
        return self.host.submit("memory", lambda task: self._reset_memory())

    def choose_learners(self, mechanisms) -> Task:
        """Which test-time learners adapt from now on (names of ADAPTATION_MECHANISMS), for this model and
        every model loaded later; what the previous ones changed is undone."""
        return self.host.submit("memory", lambda task: self._choose_learners(tuple(mechanisms)))

    def adopt_taught(self, checkpoint: str, folder: str) -> Task:
        """-> TeachOutcome. A Teach run's model replaces the one in use, with the same gallery; each of the
        user's items (the folder) is asked before the swap and after it. Until it is done (or if it
        fails) the previous model answers."""
        return self.host.submit("teach", lambda task: self._adopt(task, str(checkpoint), str(folder)), settle=True)

    def add_to_dataset(self, root: str, image=None, text=None, audio=None, label=None) -> Task:
        """-> DatasetRowAdded. `audio`: a path or (waveform, rate); files first, then one CSV row."""
        return self.host.submit("dataset", lambda task: _add_row(str(root), image, text, audio, label))

    # ------------------------------------------------------------------ the work (engine thread)
    def _load(self, task: Task, path: str):
        from engine.config import config_to_dict
        from engine.events import ModelLoaded
        from engine.retrieval import Retriever
        task.report(0, 0)
        retriever = Retriever.from_checkpoint(path, self.device)
        if self.learners is not None:
            retriever.set_adaptation(self.learners)
        self.retriever = retriever
        cfg = retriever.cfg
        self.memory_changed.emit(retriever.memory_frame())
        return ModelLoaded(path, cfg.name, config_to_dict(cfg), str(retriever.device))

    def _build_gallery(self, task: Task, source: str, split: str, limit: int):
        from engine.data.sources import load_source
        from engine.events import GalleryReady
        from engine.retrieval import gallery_items
        retriever = self._loaded()
        task.report(0, 0)
        items = gallery_items(load_source(source, progress=task.report), split, limit)
        retriever.build_gallery(items, progress=task.report)
        ready = GalleryReady(source, split, retriever.gallery_sizes())
        self.gallery = (items, ready)
        return ready

    def _adopt(self, task: Task, checkpoint: str, folder: str):
        from engine.config import config_to_dict
        from engine.data.sources import load_source
        from engine.events import GalleryReady, ModelLoaded, TaughtItem, TeachOutcome
        from engine.retrieval import Retriever
        before = self._loaded()
        if self.gallery is None:
            raise RuntimeError("the gallery is not built yet")
        items, ready = self.gallery
        task.report(0, 0)
        data = load_source(f"folder:{folder}")
        mine = [item for split in data.splits.values() for item in split if item.label is not None]
        asked_before = before.top1_labels(mine)
        task.check()
        after = Retriever.from_checkpoint(checkpoint, self.device)
        if self.learners is not None:
            after.set_adaptation(self.learners)
        after.build_gallery(items, progress=task.report)
        asked_after = after.top1_labels(mine)
        task.check()
        self.retriever = after          # the swap: from here on queries use the taught model
        self.memory_changed.emit(after.memory_frame())
        rows = tuple(TaughtItem(_name(item, modality), modality, int(item.label), was, now)
                     for item, (modality, was), (_, now) in zip(mine, asked_before, asked_after))
        model = ModelLoaded(checkpoint, after.cfg.name, config_to_dict(after.cfg), str(after.device))
        return TeachOutcome(model, GalleryReady(ready.source, ready.split, after.gallery_sizes()), rows,
                            dict(data.label_names))

    def _query(self, modality: str, value, k: int, adapt: bool):
        retriever = self._loaded()
        if not retriever.galleries:
            raise RuntimeError("the gallery is not built yet")
        if isinstance(value, (tuple, list)):
            value = (np.asarray(value[0], dtype=np.float32), int(value[1]))
        answer = retriever.query(modality, value, k=k, adapt=adapt)
        self.memory_changed.emit(retriever.memory_frame())
        return answer

    def _reset_memory(self) -> None:
        if self.retriever is not None:      # no model: nothing to reset
            self.retriever.reset_memory()
            self.memory_changed.emit(self.retriever.memory_frame())

    def _choose_learners(self, mechanisms: tuple[str, ...]) -> None:
        from engine.adaptation import check_mechanisms
        check_mechanisms(mechanisms)
        self.learners = mechanisms
        if self.retriever is not None:
            self.retriever.set_adaptation(mechanisms)
            self.memory_changed.emit(self.retriever.memory_frame())

    def _loaded(self):
        if self.retriever is None:
            raise RuntimeError("no model loaded: load a checkpoint first")
        return self.retriever


def _name(item, modality: str) -> str:
    value = getattr(item, modality)
    return value.name if hasattr(value, "name") else str(value)


def _add_row(root: str, image, text, audio, label):
    from engine.data.folder import FolderWriter
    from engine.events import DatasetRowAdded
    from engine.vocabulary import SAMPLE_RATE
    rate = SAMPLE_RATE
    if isinstance(audio, (tuple, list)):
        audio, rate = np.asarray(audio[0], dtype=np.float32), int(audio[1])
    row = FolderWriter(root).add(image=image, text=text or None, audio=audio, sample_rate=rate, label=label or None)
    return DatasetRowAdded(root, row)


def _joint_map(retriever):
    from engine.joint_space import joint_map
    if not retriever.galleries:
        raise RuntimeError("the gallery is not built yet")
    return joint_map(retriever.galleries)
