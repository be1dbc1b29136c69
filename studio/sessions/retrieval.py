"""The retrieval session: owns the retrieval model (a `Retriever`) on the engine thread; every request is a
Task whose result is a frozen dataclass of `engine.events`.

The memory view follows every change of the central memory, whoever caused it (a load, a query, a
correction, a reset), through `memory_changed`; everything else goes back to the one who asked, on its
own task. The user's corrections are kept in `corrections_folder` (one file per model, written atomically
after each change) and carried on when that model is loaded again. While no request has come for
IDLE_MS, the corrections are consolidated (engine.corrections), a replay step at a time: a query asked
meanwhile waits for one step at most.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from studio.tasks import Task

IDLE_MS = 500   # no request for this long: a consolidation step of the corrections may run


class RetrievalSession(QObject):
    memory_changed = Signal(object)     # MemoryFrame, after a load, a query or a reset

    def __init__(self, host, device: str | None = None, corrections_folder: str | None = None):
        super().__init__(host)
        self.host, self.device = host, device
        self.corrections_folder = corrections_folder    # None: corrections are not kept between launches
        self.corrections_file = None    # where the model in use keeps its corrections: engine thread only
        self.retriever = None           # touched on the engine thread only
        self.gallery = None             # (its items, GalleryReady): engine thread only
        self.learners = None            # the test-time learners chosen (None: the engine's default)
        self.idle = QTimer(self)        # restarted by every request while consolidation steps are due
        self.idle.setSingleShot(True)
        self.idle.setInterval(IDLE_MS)
        self.idle.timeout.connect(self._consolidate)
        self._consolidating = False

    # ------------------------------------------------------------------ requests (UI thread)
    def load_checkpoint(self, path: str) -> Task:
        """-> ModelLoaded. The gallery is built afresh for the new model (`build_gallery`)."""
        return self._submit("checkpoint", lambda task: self._load(task, str(path)), settle=True)

    def build_gallery(self, source: str, split: str = "test", limit: int = 100) -> Task:
        """-> GalleryReady. Progress while embedding; cancellable; the previous gallery answers until then."""
        return self._submit("gallery", lambda task: self._build_gallery(task, source, split, int(limit)),
                                settle=True)

    def query(self, modality: str, value, k: int = 5, adapt: bool = False) -> Task:
        """-> QueryAnswer. `value`: a path, text, or (float32 waveform, rate)."""
        return self._submit("query", lambda task: self._query(modality, value, int(k), bool(adapt)))

    def joint_map(self) -> Task:
        """-> JointMap: the gallery's embeddings projected to 2-D (PCA), to draw queries on."""
        return self._submit("joint space", lambda task: _joint_map(self._loaded()))

    def neighbourhood_map(self, base) -> Task:
        """-> JointMap: the t-SNE layout of the PCA map `base` (seconds; progress; cancellable), in a process
        of its own watched from the files thread: queries go on meanwhile and the window does not feel it."""
        def work(task):
            from engine.neighbourhood_map import neighbourhood_map_apart
            return neighbourhood_map_apart(base, progress=task.report)
        return self._submit("neighbourhood map", work, files=True)

    def reset_memory(self) -> Task:
        """Undo every test-time change and every correction (the kept file too)."""
        return self._submit("memory", lambda task: self._reset_memory())

    def correct(self, query_id: int, target: str, identity: int) -> Task:
        """-> CorrectionLearnt. The answer of query `query_id` in `target`'s gallery is `identity` (a result
        row's `Hit.identity`): learnt at once, kept in the corrections file."""
        return self._watch_due(self._submit(
            "correction", lambda task: self._correct(query_id, target, identity=identity)))

    def correct_label(self, query_id: int, target: str, label: str) -> Task:
        """-> CorrectionLearnt. As `correct`, the right answer typed: a label or a caption of the gallery."""
        return self._watch_due(self._submit(
            "correction", lambda task: self._correct(query_id, target, label=label)))

    def forget_correction(self, index: int) -> Task:
        """-> CorrectionLearnt. Correction `index` is dropped; the others are learnt again."""
        return self._watch_due(self._submit("correction", lambda task: self._forget(task, int(index))))

    def choose_learners(self, mechanisms) -> Task:
        """Which test-time learners adapt from now on (names of ADAPTATION_MECHANISMS), for this model and
        every model loaded later; what the previous ones changed is undone."""
        return self._submit("memory", lambda task: self._choose_learners(tuple(mechanisms)))

    def adopt_taught(self, checkpoint: str, folder: str) -> Task:
        """-> TeachOutcome. A Teach run's model replaces the one in use, with the same gallery; each of the
        user's items (the folder) is asked before the swap and after it. Until it is done (or if it
        fails) the previous model answers."""
        return self._submit("teach", lambda task: self._adopt(task, str(checkpoint), str(folder)), settle=True)

    def add_to_dataset(self, root: str, image=None, text=None, audio=None, label=None) -> Task:
        """-> DatasetRowAdded. `audio`: a path or (waveform, rate); files first, then one CSV row."""
        return self._submit("dataset", lambda task: _add_row(str(root), image, text, audio, label))

    def _submit(self, title: str, work, **options) -> Task:
        """Every request goes through here: it postpones the next consolidation step."""
        if self.idle.isActive():
            self.idle.start()
        return self.host.submit(title, work, **options)

    def _watch_due(self, task: Task) -> Task:
        """A request that changes the corrections answers whether consolidation steps are due."""
        task.result.connect(self._note_due)
        return task

    def _note_due(self, learnt) -> None:
        if learnt.consolidation_due > 0 and not self._consolidating:
            self.idle.start()

    def _consolidate(self) -> None:
        """UI thread, after IDLE_MS without a request: one consolidation step on the engine thread."""
        self._consolidating = True
        task = self.host.submit("consolidation", lambda task: self._consolidate_step())

        def done(learnt) -> None:
            self._consolidating = False
            self._note_due(learnt)
        task.result.connect(done)
        task.error.connect(lambda _message: setattr(self, "_consolidating", False))

    # ------------------------------------------------------------------ the work (engine thread)
    def _consolidate_step(self):
        retriever = self._loaded()
        if retriever.consolidate(1):
            if not retriever.corrections.consolidation_due():
                self._keep(retriever)    # once done: a crash before loses steps only, never a correction
            self.memory_changed.emit(retriever.memory_frame())
        return retriever.corrections_held()

    def _load(self, task: Task, path: str):
        from engine.config import config_to_dict
        from engine.events import ModelLoaded
        from engine.retrieval import Retriever
        task.report(0, 0)
        retriever = Retriever.from_checkpoint(path, self.device)
        if self.learners is not None:
            retriever.set_adaptation(self.learners)
        note, kept_in = self._carry_on(retriever, path)
        self.retriever, self.corrections_file = retriever, kept_in
        cfg = retriever.cfg
        self.memory_changed.emit(retriever.memory_frame())
        return ModelLoaded(path, cfg.name, config_to_dict(cfg), str(retriever.device), note)

    def _carry_on(self, retriever, path: str):
        """The corrections kept for this model, loaded into `retriever` -> (what happened, in a few words;
        the file they are kept in, or None)."""
        from engine.corrections import CorrectionsFileError, memory_file_for
        if self.corrections_folder is None:
            return "", None
        try:
            kept_in = memory_file_for(path, self.corrections_folder)
        except OSError as err:
            return f"corrections are not kept ({err.strerror or err})", None
        if not kept_in.is_file():
            return "", kept_in
        try:
            held = retriever.load_corrections(kept_in)
        except (CorrectionsFileError, ValueError) as err:
            # the unusable file is left as it is (renamed aside), never overwritten by the next correction
            aside = kept_in.with_name(kept_in.name + ".unusable")
            kept_in.replace(aside)
            return f"earlier corrections not loaded ({err}); the file is kept as {aside.name}", kept_in
        return (f"{len(held.held)} corrections carried on" if held.held else ""), kept_in

    def _correct(self, query_id: int, target: str, identity: int | None = None, label: str | None = None):
        retriever = self._loaded()
        if identity is None:
            identity = retriever.identity_of(target, label)
        learnt = retriever.correct(query_id, target, identity)
        self._keep(retriever)
        self.memory_changed.emit(retriever.memory_frame())
        return learnt

    def _forget(self, task: Task, index: int):
        retriever = self._loaded()
        task.report(0, 0)
        learnt = retriever.forget_correction(index, progress=task.report)
        self._keep(retriever)
        self.memory_changed.emit(retriever.memory_frame())
        return learnt

    def _keep(self, retriever) -> None:
        """The corrections written to their file (atomically: a crash leaves the previous one)."""
        if self.corrections_file is not None:
            retriever.save_corrections(self.corrections_file)

    def _build_gallery(self, task: Task, source: str, split: str, limit: int):
        from engine.data.sources import load_source
        from engine.gallery_cache import GalleryCache
        from engine.events import GalleryReady
        from engine.retrieval import gallery_items
        retriever = self._loaded()
        task.report(0, 0)
        data = load_source(source, progress=task.report)
        items = gallery_items(data, split, limit)
        retriever.build_gallery(items, progress=task.report, label_names=data.label_names, cache=GalleryCache())
        ready = GalleryReady(source, split, retriever.gallery_sizes())
        self.gallery = (items, ready, dict(data.label_names))
        return ready

    def _adopt(self, task: Task, checkpoint: str, folder: str):
        from engine.config import config_to_dict
        from engine.data.sources import load_source
        from engine.events import GalleryReady, ModelLoaded, TaughtItem, TeachOutcome
        from engine.gallery_cache import GalleryCache
        from engine.retrieval import Retriever
        before = self._loaded()
        if self.gallery is None:
            raise RuntimeError("the gallery is not built yet")
        items, ready, label_names = self.gallery
        task.report(0, 0)
        data = load_source(f"folder:{folder}")
        mine = [item for split in data.splits.values() for item in split if item.label is not None]
        asked_before = before.top1_labels(mine)
        task.check()
        after = Retriever.from_checkpoint(checkpoint, self.device)
        if self.learners is not None:
            after.set_adaptation(self.learners)
        after.build_gallery(items, progress=task.report, label_names=label_names, cache=GalleryCache())
        _, kept_in = self._carry_on(after, checkpoint)
        asked_after = after.top1_labels(mine)
        task.check()
        self.retriever, self.corrections_file = after, kept_in   # the swap: from here on the taught model answers
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
            self._keep(self.retriever)
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
