"""Live cross-modal retrieval: a gallery of embedded items, queries in any modality, optional adaptation.

    retriever = Retriever.from_checkpoint(path)            # the model, its config and tokenizer
    retriever.build_gallery(items)                          # embed every distinct image, caption, clip
    result = retriever.query("audio", "clip.wav", k=5, adapt=True)
    result.results["image"][0].label, .score, .path

With `adapt` the query also adapts the model (test-time training) in the order the queries arrive, by
the learners `set_adaptation()` chose (`engine/adaptation.py`); `reset_memory()` restores everything. The gallery keeps the embeddings it was
built with: adaptation changes how *queries* are read, so the effect can be measured against a fixed
gallery.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from engine.adaptation import QUERY_MEMORY_LR, Adapter
from engine.corrections import Correction, CorrectionMemory, load_memory_file, save_memory_file
from engine.config import NLMMConfig
from engine.data.audio import LogMel, fit_length, load_audio, prepare_waveform, trim_silence
from engine.data.dataset import Collate, DataSplits, Item, model_batch
from engine.data.errors import DataError
from engine.data.image import image_from_array, load_image, prepare_image
from engine.data.text import Tokenizer
from engine.device import autocast, pick_device
from engine.events import CorrectionLearnt, HeldCorrection, Hit, MemoryFrame, QueryAnswer
from engine.threads import intra_op_threads, threads_for
from engine.training.checkpoint import load_model
from engine.query_views import encode_image_queries
from engine.training.evaluate import EmbeddedGallery, distinct_sources, embed_gallery, item_identity
from engine.gallery_cache import GalleryCache, gallery_key
from engine.vocabulary import ANSWER_GALLERY, DEFAULT_ADAPTATION, MODALITIES, SPLITS

# A query clip is read up to twice the length the model hears, so that a pause before the speech can
# be trimmed; never the whole file (a 2-hour recording would be 2 GB of samples).
QUERY_READ_FACTOR = 2.0
RECENT_QUERIES = 64     # the queries a correction may still name (their prepared inputs are kept)
ANCHOR_ITEMS = 256      # built-in training items a correction holds in place (engine/corrections.py)


def gallery_items(data: DataSplits, split: str, limit: int) -> list[Item]:
    """At most `limit` items of `split` ("all": every split), spread evenly over it (labels stay mixed)."""
    items = [item for name in SPLITS for item in data.splits.get(name, [])] if split == "all" \
        else data.splits.get(split, [])
    if not items:
        raise ValueError(f"{data.source}: no items in its '{split}' split to search")
    if limit <= 0 or len(items) <= limit:
        return list(items)
    stride = len(items) / limit
    return [items[int(i * stride)] for i in range(limit)]


class Retriever:
    def __init__(self, model, cfg: NLMMConfig, tokenizer: Tokenizer, device: torch.device):
        self.model, self.cfg, self.tokenizer, self.device = model.eval(), cfg, tokenizer, device
        self.log_mel = LogMel(cfg.audio)
        self.collate = Collate(tokenizer, cfg.text.max_tokens)
        self.galleries: dict[str, EmbeddedGallery] = {}
        self.threads_used = 0  # intra-op threads the last query ran on
        names, options = default_adaptation(cfg)
        self.adapter = Adapter(self.model, names, **options)
        # The weights as loaded: `reset_memory` returns to them whatever adapted or was corrected since.
        self._loaded_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.corrections = CorrectionMemory(self.model, anchors=self._anchor_inputs,
                                            autocast=lambda: autocast(cfg.precision, device))
        self._recent: dict[int, tuple[str, dict, str]] = {}   # query id -> (modality, prepared inputs, shown)
        self.label_names: dict[int, str] = {}    # label -> the user's name for it, where it is not the number
        self._next_query = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | None = None) -> "Retriever":
        dev = pick_device(device)
        model, cfg, tokenizer, _ = load_model(path, dev)
        return cls(model, cfg, tokenizer, dev)

    # ------------------------------------------------------------------ gallery
    def build_gallery(self, items: list[Item], progress=None, batch_size: int = 128,
                      label_names: dict[int, str] | None = None, cache: GalleryCache | None = None) -> bool:
        """Embed `items` as the gallery (with the weights as trained, whatever the corrections moved). The old
        gallery stays in use until the new one is complete, so a failed or cancelled build (an exception from
        `progress`) leaves search working as before. `label_names`: the user's names of the labels (a
        folder data set's "bird"), shown with the hits. `cache`: where embedded galleries are kept
        (`engine.gallery_cache`); the same items and weights are then read back instead of embedded.
        Returns whether the gallery came from the cache."""
        ids = item_identity(items)
        present = [m for m in MODALITIES if any(getattr(i, m) is not None for i in items)]
        galleries, cached = {}, None
        # embedded as trained: corrections change how the user's queries are read, not the reference items
        with intra_op_threads(threads_for(batch_size)), self.corrections.as_trained():
            key = gallery_key(self.model, self.cfg, self.tokenizer, self.device, items) if cache else None
            stored = cache.load(key) if cache else None
            if stored is not None and sorted(stored) == sorted(present):
                cached = _galleries_from(stored, items, ids)
            if cached is not None:
                galleries = cached
                if progress is not None:
                    progress(len(present), len(present))
            else:
                for n, modality in enumerate(present):
                    step = None if progress is None else (lambda done, total, n=n: progress(n + done / total, len(present)))
                    galleries[modality] = embed_gallery(self.model, items, ids, modality, self.cfg, self.tokenizer,
                                                        self.device, batch_size, progress=step)
                if cache:
                    cache.save(key, {m: _stored(g, items, ids) for m, g in galleries.items()})
        self.galleries = galleries
        self.label_names = {int(k): str(v) for k, v in (label_names or {}).items() if str(v) != str(k)}
        return cached is not None

    def gallery_sizes(self) -> dict[str, int]:
        return {m: len(g.ids) for m, g in self.galleries.items()}

    # ------------------------------------------------------------------ queries
    def sample(self, modality: str, value, index: int = 0) -> dict:
        """A file path, text, PIL image, pixel array or (waveform, rate) -> a data set sample of one modality, which
        the data set's collate pads into a batch like any other (`embed`, `embed_many`)."""
        sample = {"index": index, "label": -1, "text": None, "image": None, "audio": None, "errors": []}
        if modality == "text":
            sample["text"] = str(value)
        elif modality == "image":
            if isinstance(value, (str, Path)):
                sample["image"] = load_image(value, self.cfg.image)
            elif isinstance(value, np.ndarray):
                sample["image"] = prepare_image(image_from_array(value, _shown(value)), self.cfg.image, _shown(value))
            else:
                sample["image"] = prepare_image(value, self.cfg.image)
        elif modality == "audio":
            audio = self.cfg.audio
            read_seconds = QUERY_READ_FACTOR * audio.max_seconds
            if isinstance(value, (str, Path)):
                wave = load_audio(value, audio.sample_rate, read_seconds)
            else:
                samples, rate = value
                samples = np.asarray(samples)[: int(read_seconds * rate) + 1]
                wave = prepare_waveform(samples, rate, audio.sample_rate, "recording")
            wave = fit_length(trim_silence(wave, audio.sample_rate), int(audio.max_seconds * audio.sample_rate))
            sample["audio"] = self.log_mel(torch.from_numpy(wave))
        else:
            raise ValueError(f"unknown modality '{modality}'")
        return sample

    def _inputs(self, samples: list[dict]) -> dict:
        batch = self.collate(samples)
        if batch["errors"]:   # the collate drops a row it cannot read (text with no words): a query must not
            raise DataError(batch["errors"][0])
        return model_batch(batch, self.device)

    def _encode(self, modality: str, inputs: dict) -> torch.Tensor:
        with autocast(self.cfg.precision, self.device):
            return self.model.encode(modality, inputs[modality], inputs.get(f"{modality}_mask")).float().cpu()

    @torch.no_grad()
    def _encode_query(self, modality: str, inputs: dict) -> torch.Tensor:
        """A query's embedding: an image's is the mean of its shifted views (`engine.query_views`)."""
        if modality != "image":
            return self._encode(modality, inputs)
        with autocast(self.cfg.precision, self.device):
            return encode_image_queries(self.model, inputs["image"]).cpu()

    def set_adaptation(self, mechanisms, **options) -> None:
        """Which learners adapt from now on (`ADAPTATION_MECHANISMS`), with `Adapter`'s options (by default
        the query-time ones of `default_adaptation`); what the old ones changed is undone."""
        self.adapter.reset()     # the corrections' weights are kept: `_corrected` rebased the adapter on them
        self.adapter = Adapter(self.model, mechanisms, **{**default_adaptation(self.cfg)[1], **options})

    @torch.no_grad()
    def embed(self, modality: str, value, adapt: bool = False) -> torch.Tensor:
        return self._embed_one(modality, value, adapt)[0]

    def _embed_one(self, modality: str, value, adapt: bool) -> tuple[torch.Tensor, dict]:
        """-> (the query's embedding, its prepared inputs as a model batch of one row)."""
        with intra_op_threads(threads_for(1)):
            self.threads_used = torch.get_num_threads()
            sample = self.sample(modality, value)
            inputs = self._inputs([sample])
            if not adapt:
                embedding = self._encode_query(modality, inputs)[0]
            else:
                with self.adapter.writing():
                    embedding = self._encode(modality, inputs)[0]   # one view writes, as one query should
                if modality == "image":
                    embedding = self._encode_query(modality, inputs)[0]   # answered from what it wrote
                target = self.galleries.get(ANSWER_GALLERY[modality])
                if self.adapter.learns_online and target is not None and len(target.ids):
                    self.adapter.learn(modality, inputs, target.embeddings, target.ids,
                                       lambda: autocast(self.cfg.precision, self.device))
        if not torch.isfinite(embedding).all():
            raise DataError(f"{_shown(value)[:80]}: the model's embedding of this {modality} is not finite")
        return embedding, inputs

    @torch.no_grad()
    def embed_many(self, modality: str, values: list, batch_size: int = 64) -> torch.Tensor:
        """Embeddings of many queries at once, without adaptation -> (N, D) on the CPU."""
        with intra_op_threads(threads_for(min(batch_size, len(values)))):
            rows = [self._encode_query(modality, self._inputs([self.sample(modality, v, i)
                                                         for i, v in enumerate(values[start:start + batch_size])]))
                    for start in range(0, len(values), batch_size)]
        return torch.cat(rows) if rows else torch.zeros(0, self.cfg.d_model)

    def query(self, modality: str, value, k: int = 5, adapt: bool = False,
              targets: list[str] | None = None) -> QueryAnswer:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        start = time.perf_counter()
        with torch.no_grad():
            embedding, inputs = self._embed_one(modality, value, adapt)
        results = {}
        for target in targets or [m for m in MODALITIES if m != modality]:
            gallery = self.galleries.get(target)
            if gallery is None or len(gallery.ids) == 0:
                continue
            scores = self.corrections.adjust(modality, embedding, gallery.embeddings @ embedding, gallery.ids)
            top = scores.topk(min(k, len(scores)))
            results[target] = tuple(self._hit(gallery, int(i), float(s)) for s, i in zip(top.values, top.indices))
        query_id = self._remember_query(modality, inputs, _shown(value))
        return QueryAnswer(_shown(value), modality, results, (time.perf_counter() - start) * 1e3, adapt,
                           embedding.numpy(), self.threads_used, query_id)

    def _remember_query(self, modality: str, inputs: dict, shown: str) -> int:
        query_id, self._next_query = self._next_query, self._next_query + 1
        self._recent[query_id] = (modality, {k: v.detach().cpu() for k, v in inputs.items()}, shown)
        while len(self._recent) > RECENT_QUERIES:
            self._recent.pop(next(iter(self._recent)))
        return query_id

    # ------------------------------------------------------------------ corrections
    def identity_of(self, target: str, label) -> int:
        """The identity in `target`'s gallery that `label` names: a label as given ("42", 42) or a caption
        the gallery holds ("forty two"). A ValueError names what the gallery holds when none matches."""
        gallery = self.galleries.get(target)
        if gallery is None or len(gallery.ids) == 0:
            raise ValueError(f"there is no {target} gallery to correct an answer in")
        wanted = str(label).strip()
        for item, identity in zip(gallery.items, gallery.ids.tolist()):
            if item.label is not None and wanted in (str(item.label), self.label_names.get(item.label)):
                return int(identity)
        captions = self.galleries.get("text")
        folded = wanted.casefold()
        if captions is not None:
            for item, identity in zip(captions.items, captions.ids.tolist()):
                if item.text is not None and item.text.strip().casefold() == folded:
                    if bool((gallery.ids == identity).any()):
                        return int(identity)
        known = sorted({self.label_names.get(i.label, str(i.label)) for i in gallery.items if i.label is not None},
                       key=lambda x: (len(x), x))
        hint = f" (it holds labels {', '.join(known[:5])}{', …' if len(known) > 5 else ''})" if known else ""
        raise ValueError(f"'{wanted}' is not an answer of the {target} gallery{hint}")

    def correct(self, query_id: int, target: str, identity: int) -> CorrectionLearnt:
        """The answer of query `query_id` in `target`'s gallery should have been `identity`: learn it now."""
        if query_id not in self._recent:
            raise ValueError("that query is no longer held: ask it again, then correct its answer")
        gallery = self.galleries.get(target)
        if gallery is None or len(gallery.ids) == 0:
            raise ValueError(f"there is no {target} gallery to correct an answer in")
        modality, inputs, shown = self._recent[query_id]
        label = next((self.label_names.get(item.label, str(item.label)) for item, i in
                      zip(gallery.items, gallery.ids.tolist()) if i == identity and item.label is not None), None)
        if label is None:
            label = next((item.text or Path(str(item.image or item.audio)).name
                          for item, i in zip(gallery.items, gallery.ids.tolist()) if i == identity), str(identity))
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with intra_op_threads(threads_for(self.corrections.batch_size(modality))):
            learnt = self.corrections.learn(Correction(modality, target, int(identity), label, shown, inputs),
                                            gallery.embeddings, gallery.ids)
        self._corrected()
        return self.corrections_held(latest=len(self.corrections.corrections) - 1, seconds=learnt.seconds)

    def forget_correction(self, index: int, progress=None) -> CorrectionLearnt:
        """Drop one correction; the others are learnt again from the weights as loaded."""
        with intra_op_threads(threads_for(self.corrections.batch_size())):
            self.corrections.forget(index, self._gallery_of, progress)
        self._corrected()
        return self.corrections_held()

    def consolidate(self, steps: int = 1) -> int:
        """Up to `steps` of the corrections' consolidation steps still due (`CorrectionMemory.consolidate`);
        for idle time: each takes about what one correction does. Returns how many were taken."""
        if not self.corrections.consolidation_due():
            return 0
        with intra_op_threads(threads_for(self.corrections.batch_size())):
            taken = self.corrections.consolidate(self._gallery_of, steps)
        self._corrected()
        return taken

    def _gallery_of(self, target: str):
        gallery = self.galleries.get(target)
        if gallery is None:
            raise ValueError(f"the {target} gallery a correction names is not built")
        return gallery.embeddings, gallery.ids

    def corrections_held(self, latest: int = -1, seconds: float = 0.0) -> CorrectionLearnt:
        held = tuple(HeldCorrection(c.name, c.modality, c.target, c.label, c.seconds)
                     for c in self.corrections.corrections)
        return CorrectionLearnt(held, self.corrections.weights_moved(), latest, seconds,
                                self.corrections.consolidation_due(), self.corrections.consolidated)

    def save_corrections(self, path) -> Path:
        """The corrections and the weights they moved, written atomically to `path`."""
        return save_memory_file(path, self.corrections.state())

    def load_corrections(self, path) -> CorrectionLearnt:
        """Carry on with the corrections saved in `path` (those held now are dropped first)."""
        self.corrections.restore(load_memory_file(path))
        self._corrected()
        return self.corrections_held()

    def _corrected(self) -> None:
        """What the corrections moved is the starting point of test-time adaptation from now on (its reset
        keeps them, and the fast level is held near them, not pulled back to before them)."""
        self.adapter.rebase(self.corrections.moved_names())

    def _anchor_inputs(self, modality: str) -> dict | None:
        """Built-in training items of `modality`, prepared as queries are: what a correction holds in place."""
        from engine.data.builtin import load_builtin_manifest
        try:
            train = load_builtin_manifest()["train"]
        except DataError:
            return None
        chosen = train[:: max(1, len(train) // ANCHOR_ITEMS)][:ANCHOR_ITEMS]
        values = {"image": lambda i: i.image, "audio": lambda i: i.audio, "text": lambda i: i.text}[modality]
        samples = []
        for n, item in enumerate(chosen):
            try:
                samples.append(self.sample(modality, values(item), n))
            except DataError:
                continue
        return self._inputs(samples) if samples else None

    def top1_labels(self, items: list[Item]) -> list[tuple[str, int | None]]:
        """For each item, the modality it is asked with (its audio, else its image, else its text) and the
        label of the top-1 result in another modality's gallery (images for audio and text, captions for
        images); None where that gallery is missing or the item's file cannot be read."""
        asked = [next((m for m in ("audio", "image", "text") if getattr(item, m) is not None), "text")
                 for item in items]
        out: list[tuple[str, int | None]] = [(m, None) for m in asked]
        for modality in ("audio", "image", "text"):
            rows = [i for i, m in enumerate(asked) if m == modality and getattr(items[i], m) is not None]
            target = self.galleries.get(ANSWER_GALLERY[modality])
            if not rows or target is None or len(target.ids) == 0:
                continue
            for i in rows:
                try:
                    embedding = self.embed_many(modality, [getattr(items[i], modality)])[0]
                except DataError:
                    continue
                out[i] = (modality, int(target.ids[int((target.embeddings @ embedding).argmax())]))
        return out

    def _hit(self, gallery: EmbeddedGallery, row: int, score: float) -> Hit:
        item = gallery.items[row]
        path = item.image if gallery.modality == "image" else item.audio if gallery.modality == "audio" else None
        caption = item.text if gallery.modality == "text" else None
        return Hit(gallery.modality, score, item.label, caption, str(path) if path is not None else None,
                   int(gallery.ids[row]), self.label_names.get(item.label))

    @torch.no_grad()
    def reset_memory(self) -> None:
        """Undo every test-time change (slots, projections, levels, acoustic domains) and every correction:
        the model is the one loaded, bit for bit."""
        self.adapter.reset()
        self.corrections.reset()
        self.model.load_state_dict(self._loaded_state)

    def memory_frame(self) -> MemoryFrame:
        """The central memory (change since the last reset), the audio domain memory's stream domains and how
        far the adapted projections and levels moved."""
        snapshot = self.model.memory.snapshot()
        domains = self.model.encoders["audio"].domain.describe() if "audio" in self.model.encoders else None
        return MemoryFrame("retrieval", snapshot["write_count"], snapshot["slots"], snapshot["change"],
                           snapshot["last_write_slots"], snapshot["write_count"], domains,
                           self.adapter.weights_moved(), self.corrections_held())


def default_adaptation(cfg: NLMMConfig) -> tuple[tuple[str, ...], dict]:
    """What `adapt=True` does unless told otherwise, as (learners, `Adapter` options): the ablation's
    choice (`DEFAULT_ADAPTATION`), the slots written by the config's `ttt.write_modalities` only, at the
    query-time rate; nothing when the config switches test-time training off."""
    if not cfg.ttt.enable:
        return (), {}
    return DEFAULT_ADAPTATION, {"memory_modalities": tuple(cfg.ttt.write_modalities), "memory_lr": QUERY_MEMORY_LR}



def _shown(value) -> str:
    """How a query is named in results and messages: a path or text as given, a recording or pixels as such."""
    if isinstance(value, np.ndarray):
        return "image pixels"
    return "recording" if isinstance(value, tuple) else str(value)


def _source_keys(items: list[Item], ids: list[int], modality: str) -> dict[tuple[str, int], int]:
    """(source, identity) -> its row in `distinct_sources` (each pair is there once)."""
    sources, source_ids = distinct_sources(items, ids, modality)
    return {(str(getattr(s, modality)), i): n for n, (s, i) in enumerate(zip(sources, source_ids))}


def _stored(gallery: EmbeddedGallery, items: list[Item], ids: list[int]) -> dict[str, torch.Tensor]:
    """An embedded gallery as tensors: its rows, their identities, and which distinct source each row is
    (files that could not be read have no row)."""
    rows = _source_keys(items, ids, gallery.modality)
    sources = [rows[(str(getattr(s, gallery.modality)), int(i))] for s, i in zip(gallery.items, gallery.ids.tolist())]
    return {"embeddings": gallery.embeddings, "ids": gallery.ids, "sources": torch.tensor(sources, dtype=torch.long)}


def _galleries_from(stored: dict, items: list[Item], ids: list[int]) -> dict[str, EmbeddedGallery] | None:
    """The galleries `_stored` kept, for the same `items`; None when they do not fit them."""
    galleries = {}
    for modality, tensors in stored.items():
        sources, _ = distinct_sources(items, ids, modality)
        rows = tensors.get("sources")
        embeddings, kept_ids = tensors.get("embeddings"), tensors.get("ids")
        if rows is None or embeddings is None or kept_ids is None or not (len(rows) == len(embeddings) == len(kept_ids)):
            return None
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= len(sources)):
            return None
        galleries[modality] = EmbeddedGallery(modality, embeddings.float(), kept_ids.long(),
                                              [sources[int(r)] for r in rows])
    return galleries
