"""What the engine reports, defined once as frozen dataclasses: the trainer emits them, the run log writes
them, the CLI prints them and the studio's panels draw them.

Every event has a `kind` ("step", "eval", …); those of a training run that the run log keeps
(`engine/training/runs.py`) become one JSON object a line through `record()` and come back through
`from_record()`. Imports nothing heavy (no torch), so the studio's UI thread reads these too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _kind(name: str):
    return field(default=name, init=False)


# ---------------------------------------------------------------- a training run, as it goes

@dataclass(frozen=True)
class RunStarted:
    """The model is built and the first step is next."""
    out_dir: str
    total_steps: int
    start_step: int
    name: str
    levels: tuple[str, ...]         # the CMS levels' names, in order
    chunk_sizes: tuple[int, ...]
    device: str
    learning: tuple[str, ...] = ()  # the modalities whose parts learn when others stay frozen; () = all
    kind: str = _kind("started")


@dataclass(frozen=True)
class StepMetrics:
    step: int
    loss: float
    total_steps: int = 0
    pair_losses: dict[str, float] = field(default_factory=dict)   # "image-text" -> loss
    stepped_levels: tuple[str, ...] = ()                          # the CMS levels that stepped
    lrs: dict[str, float] = field(default_factory=dict)           # each level's and "outer"'s rate
    samples_per_s: float = 0.0
    eta_s: float = 0.0
    grad_norm: float = 0.0
    temperature: float = 0.0
    kind: str = _kind("step")


@dataclass(frozen=True)
class Evaluation:
    step: int
    recall: dict[str, dict[str, float]]   # "image->text" -> {"R@1", "R@5", "R@10"}
    split: str = "val"
    kind: str = _kind("eval")

    def best_r1(self) -> float:
        return max((values["R@1"] for values in self.recall.values()), default=0.0)


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str
    kind: str = _kind("checkpoint")


@dataclass(frozen=True)
class DataWarning:
    """A file that could not be read (reported once per file; the run goes on without it)."""
    message: str
    kind: str = _kind("warning")


@dataclass(frozen=True)
class PauseChanged:
    """kind "paused" (the loop waits after this step) or "resumed"."""
    step: int
    kind: str = "paused"


@dataclass(frozen=True)
class RunEnded:
    """How a run ended: kind "finished" (all steps), "stopped" (asked to) or "failed" (message says why)."""
    kind: str
    step: int
    message: str
    checkpoint: str | None = None


# ---------------------------------------------------------------- the central memory

@dataclass(frozen=True, eq=False)
class MemoryFrame:
    """The central memory's slots at one moment (plain numpy copies, for viewers)."""
    source: str                 # "training" | "retrieval"
    step: int                   # the training step, or the test-time writes so far
    slots: np.ndarray           # (L_mem, D)
    change: np.ndarray          # (L_mem,) L2 change of each slot: since the run started / since the last reset
    written: np.ndarray         # the slots the last test-time write moved
    write_count: int = 0
    audio_domains: dict | None = None   # the audio domain memory's stream domains (retrieval only)
    weights_moved: dict | None = None   # HOPE projections and fast CMS level: relative change (retrieval only)
    corrections: CorrectionLearnt | None = None   # the user's corrections held, and what they moved (retrieval only)
    kind: str = _kind("memory")


# ---------------------------------------------------------------- retrieval

@dataclass(frozen=True)
class EngineReady:
    device: str
    cuda: bool
    cuda_reason: str            # why there is no CUDA ("" when there is)


@dataclass(frozen=True)
class ModelLoaded:
    path: str
    name: str
    config: dict                # the checkpoint's config as plain data
    device: str
    note: str = ""              # what else came with it ("12 corrections carried on", or why they did not)


@dataclass(frozen=True)
class GalleryReady:
    source: str
    split: str
    sizes: dict[str, int]       # modality -> items embedded


@dataclass(frozen=True)
class Hit:
    modality: str
    score: float
    label: int | None
    caption: str | None
    path: str | None
    identity: int = -1          # the answer it shows in its gallery (the label, or its pair): what a correction names
    label_name: str | None = None   # the label as the user wrote it in their data set ("bird"), when it has one

    def shown_label(self):
        """The label as the user knows it: their own name for it, else the number."""
        return self.label_name if self.label_name is not None else self.label

    def as_dict(self) -> dict:
        """JSON-ready; "label" is the user's own name for it when their data set names it."""
        out = dataclasses.asdict(self)
        out["label"] = out.pop("label_name") if self.label_name is not None else self.label
        out.pop("label_name", None)
        return out


@dataclass(frozen=True, eq=False)
class QueryAnswer:
    query: str
    modality: str
    results: dict[str, tuple[Hit, ...]]   # target modality -> the top k, best first
    latency_ms: float
    adapt: bool = False
    embedding: np.ndarray | None = None
    threads: int = 1  # torch intra-op threads the query ran on
    query_id: int = -1  # names this query to `Retriever.correct` (the recent ones are kept)

    def as_dict(self) -> dict:
        """One JSON-ready object (`nlmm query --json` prints one a line)."""
        flat = [hit.as_dict() for hits in self.results.values() for hit in hits]
        return {"query": self.query, "modality": self.modality, "results": flat, "latency_ms": self.latency_ms}


@dataclass(frozen=True)
class HeldCorrection:
    """One correction the model holds, as the memory view lists it."""
    query: str                  # the query as shown (a file name, "recording", the text)
    modality: str               # what was asked
    target: str                 # the gallery the right answer is in
    label: str                  # the right answer
    seconds: float              # how long learning it took


@dataclass(frozen=True, eq=False)
class CorrectionLearnt:
    """A correction was learnt (or one forgotten, or all reset): what the model now holds and what it changed."""
    held: tuple[HeldCorrection, ...]
    moved: dict                 # modality -> {block / head: relative change of its weights since the first correction}
    latest: int = -1            # the index in `held` of the correction just learnt (-1: none, after a forget or reset)
    seconds: float = 0.0        # how long learning it took
    consolidation_due: int = 0  # replay steps still to take while idle (engine.corrections: consolidation)
    consolidated: int = 0       # replay steps taken since the corrections last changed


@dataclass(frozen=True, eq=False)
class JointMap:
    """The gallery's joint space drawn flat (engine/joint_space.py): every embedded item as a point of a 2-D
    map, with what a viewer shows on hover; `place` puts a query's embedding on the same map.

    `method` "pca": the gallery's two principal directions (linear: a query lands by the same projection).
    "tsne": a neighbourhood-preserving layout (openTSNE), which has no projection: a query lands among the
    gallery items nearest to it (`embeddings` kept for that)."""
    points: np.ndarray          # (N, 2) float32
    modalities: np.ndarray      # (N,) index into vocabulary.MODALITIES
    labels: np.ndarray          # (N,) the item's label, -1 when it has none
    names: tuple[str, ...]      # (N,) the caption, or the file's path
    mean: np.ndarray            # (D,) the gallery's mean embedding (the centre PCA subtracts)
    axes: np.ndarray            # (D, 2) the two principal directions (PCA)
    explained: tuple[float, float]   # the share of the gallery's variance along each axis (PCA)
    index: dict = field(default_factory=dict)   # (modality, name) -> row, to find a hit's point
    method: str = "pca"
    embeddings: np.ndarray | None = None   # (N, D) the rows as unit vectors (t-SNE's input; its query placing)
    neighbours: int = 10        # the gallery items a query is placed among, on a t-SNE map
    kind: str = _kind("joint_map")

    def place(self, embedding: np.ndarray) -> np.ndarray:
        """(D,) embedding -> (2,) position on this map: PCA's projection, or (t-SNE) the mean of the places
        of its `neighbours` nearest gallery items, the nearer weighing more."""
        embedding = np.asarray(embedding, dtype=np.float32)
        if self.method == "pca" or self.embeddings is None:
            return ((embedding - self.mean) @ self.axes).astype(np.float32)
        cosine = self.embeddings @ (embedding / max(float(np.linalg.norm(embedding)), 1e-12))
        k = min(self.neighbours, len(cosine))
        nearest = np.argpartition(-cosine, k - 1)[:k]   # on the UI thread: no full sort of a big gallery
        weights = np.exp((cosine[nearest] - cosine[nearest].max()) / 0.05)
        return (weights @ self.points[nearest] / weights.sum()).astype(np.float32)

    def row_of(self, hit) -> int | None:
        """The point of a query's hit (a Hit), None when the map was drawn from another gallery."""
        return self.index.get((hit.modality, hit.path if hit.path is not None else hit.caption))


@dataclass(frozen=True)
class DatasetRowAdded:
    root: str
    row: dict[str, Any]


@dataclass(frozen=True)
class TaughtItem:
    """One of the user's items, and the label of its top-1 result before and after teaching."""
    name: str                   # the file (or caption) it was queried with
    modality: str               # what it was queried with
    label: int
    before: int | None          # the top-1 result's label (None: nothing to compare with)
    after: int | None


@dataclass(frozen=True)
class TeachOutcome:
    """A Teach run's model is in use for retrieval; how the user's own items fare with it."""
    model: ModelLoaded
    gallery: GalleryReady
    items: tuple[TaughtItem, ...]
    label_names: dict[int, str] = field(default_factory=dict)

    def top1(self, when: str) -> float:
        """Share of the items whose top-1 result has their label, "before" or "after"."""
        return sum(getattr(i, when) == i.label for i in self.items) / max(1, len(self.items))


# ---------------------------------------------------------------- the run log's records

LOGGED = {"step": StepMetrics, "eval": Evaluation, "checkpoint": CheckpointSaved,
          "finished": RunEnded, "stopped": RunEnded, "failed": RunEnded}


def record(event) -> dict:
    """A logged event as plain JSON-ready data, "kind" first (the format of metrics.jsonl)."""
    data = dataclasses.asdict(event)
    return {"kind": data.pop("kind"), **data}


def from_record(data: Any):
    """The event a run-log record holds; None for a record of another kind or one that does not fit
    (a line cut off by a crash, a field of the wrong type)."""
    if not isinstance(data, dict):
        return None
    cls = LOGGED.get(data.get("kind"))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        event = cls(**{k: v for k, v in data.items() if k in names})
        if cls is StepMetrics:
            event = dataclasses.replace(event, stepped_levels=tuple(event.stepped_levels), step=int(event.step),
                                        loss=float(event.loss))
        elif cls is Evaluation and not isinstance(event.recall, dict):
            return None
    except (TypeError, ValueError):
        return None
    return event
