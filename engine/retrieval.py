"""Live cross-modal retrieval: a gallery of embedded items, queries in any modality, optional adaptation.

    retriever = Retriever.from_checkpoint(path)            # the model, its config and tokenizer
    retriever.build_gallery(items)                          # embed every distinct image, caption, clip
    result = retriever.query("audio", "clip.wav", k=5, adapt=True)
    result.results["image"][0].label, .score, .path

With `adapt` the query also writes into the central memory (test-time training), in the order the
queries arrive; `reset_memory()` restores the trained slots. The gallery keeps the embeddings it was
built with: adaptation changes how *queries* are read, so the effect can be measured against a fixed
gallery.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.config import MODALITIES, NLMMConfig
from engine.data.audio import LogMel, fit_length, load_audio, prepare_waveform, trim_silence
from engine.data.dataset import Item
from engine.data.image import load_image, prepare_image
from engine.data.text import Tokenizer
from engine.data.errors import DataError
from engine.device import autocast, pick_device
from engine.threads import intra_op_threads, threads_for
from engine.training.evaluate import EmbeddedGallery, embed_gallery, item_identity
from engine.training.checkpoint import load_model

# A query clip is read up to twice the length the model hears, so that a pause before the speech can
# be trimmed; never the whole file (a 2-hour recording would be 2 GB of samples).
QUERY_READ_FACTOR = 2.0


@dataclass
class Hit:
    modality: str
    score: float
    label: int | None
    caption: str | None
    path: str | None

    def as_dict(self) -> dict:
        return {"modality": self.modality, "score": self.score, "label": self.label,
                "caption": self.caption, "path": self.path}


@dataclass
class QueryResult:
    query: str
    modality: str
    results: dict[str, list[Hit]] = field(default_factory=dict)
    latency_ms: float = 0.0
    embedding: np.ndarray | None = None
    threads: int = 1  # torch intra-op threads the query ran on

    def as_dict(self) -> dict:
        flat = [hit.as_dict() for hits in self.results.values() for hit in hits]
        return {"query": self.query, "modality": self.modality, "results": flat, "latency_ms": self.latency_ms}


class Retriever:
    def __init__(self, model, cfg: NLMMConfig, tokenizer: Tokenizer, device: torch.device):
        self.model, self.cfg, self.tokenizer, self.device = model.eval(), cfg, tokenizer, device
        self.log_mel = LogMel(cfg.audio)
        self.galleries: dict[str, EmbeddedGallery] = {}
        self.threads_used = 0  # intra-op threads the last query ran on

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | None = None) -> "Retriever":
        dev = pick_device(device)
        model, cfg, tokenizer, _ = load_model(path, dev)
        return cls(model, cfg, tokenizer, dev)

    # ------------------------------------------------------------------ gallery
    def build_gallery(self, items: list[Item], progress=None, batch_size: int = 128) -> None:
        """Embed `items` as the gallery. The old gallery stays in use until the new one is complete, so a
        failed or cancelled build (an exception from `progress`) leaves search working as before."""
        ids = item_identity(items)
        present = [m for m in MODALITIES if any(getattr(i, m) is not None for i in items)]
        galleries = {}
        with intra_op_threads(threads_for(batch_size)):
            for n, modality in enumerate(present):
                step = None if progress is None else (lambda done, total, n=n: progress(n + done / total, len(present)))
                galleries[modality] = embed_gallery(self.model, items, ids, modality, self.cfg, self.tokenizer,
                                                    self.device, batch_size, progress=step)
        self.galleries = galleries

    def gallery_sizes(self) -> dict[str, int]:
        return {m: len(g.ids) for m, g in self.galleries.items()}

    # ------------------------------------------------------------------ queries
    def prepare(self, modality: str, value) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A file path, text, PIL image or (waveform, rate) -> model inputs for one query."""
        if modality == "text":
            tokens, mask = self.tokenizer.encode_batch([str(value)], self.cfg.text.max_tokens)
            return tokens.to(self.device), mask.to(self.device)
        if modality == "image":
            tensor = load_image(value, self.cfg.image) if isinstance(value, (str, Path)) \
                else prepare_image(value, self.cfg.image)
            return tensor[None].to(self.device), None
        if modality == "audio":
            audio = self.cfg.audio
            read_seconds = QUERY_READ_FACTOR * audio.max_seconds
            if isinstance(value, (str, Path)):
                wave = load_audio(value, audio.sample_rate, read_seconds)
            else:
                samples, rate = value
                samples = np.asarray(samples)[: int(read_seconds * rate) + 1]
                wave = prepare_waveform(samples, rate, audio.sample_rate, "recording")
            wave = fit_length(trim_silence(wave, audio.sample_rate), int(audio.max_seconds * audio.sample_rate))
            mel = self.log_mel(torch.from_numpy(wave))[None]
            return mel.to(self.device), torch.ones(1, mel.shape[-1], dtype=torch.bool, device=self.device)
        raise ValueError(f"unknown modality '{modality}'")

    @torch.no_grad()
    def embed(self, modality: str, value, adapt: bool = False) -> torch.Tensor:
        with intra_op_threads(threads_for(1)):
            self.threads_used = torch.get_num_threads()
            inputs, mask = self.prepare(modality, value)
            self.model.set_adapting(memory=adapt, hope=False)
            try:
                with autocast(self.cfg.precision, self.device):
                    embedding = self.model.encode(modality, inputs, mask).float().cpu()[0]
            finally:
                self.model.set_adapting(memory=False, hope=False)
        if not torch.isfinite(embedding).all():
            raise DataError(f"{_shown(value)[:80]}: the model's embedding of this {modality} is not finite")
        return embedding

    @torch.no_grad()
    def embed_many(self, modality: str, values: list, batch_size: int = 64) -> torch.Tensor:
        """Embeddings of many queries at once, without adaptation -> (N, D) on the CPU."""
        with intra_op_threads(threads_for(min(batch_size, len(values)))):
            return self._embed_batches(modality, values, batch_size)

    def _embed_batches(self, modality: str, values: list, batch_size: int) -> torch.Tensor:
        rows = []
        for start in range(0, len(values), batch_size):
            prepared = [self.prepare(modality, v) for v in values[start:start + batch_size]]
            if modality == "audio":
                frames = max(mel.shape[-1] for mel, _ in prepared)
                inputs = torch.zeros(len(prepared), prepared[0][0].shape[1], frames, device=self.device)
                mask = torch.zeros(len(prepared), frames, dtype=torch.bool, device=self.device)
                for row, (mel, _) in enumerate(prepared):
                    inputs[row, :, : mel.shape[-1]] = mel[0]
                    mask[row, : mel.shape[-1]] = True
            elif modality == "text":
                length = max(tokens.shape[1] for tokens, _ in prepared)
                inputs = torch.zeros(len(prepared), length, dtype=torch.long, device=self.device)
                for row, (tokens, _) in enumerate(prepared):
                    inputs[row, : tokens.shape[1]] = tokens[0]
                mask = inputs != 0
            else:
                inputs, mask = torch.cat([image for image, _ in prepared]), None
            with autocast(self.cfg.precision, self.device):
                rows.append(self.model.encode(modality, inputs, mask).float().cpu())
        return torch.cat(rows) if rows else torch.zeros(0, self.cfg.d_model)

    def query(self, modality: str, value, k: int = 5, adapt: bool = False,
              targets: list[str] | None = None) -> QueryResult:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        start = time.perf_counter()
        embedding = self.embed(modality, value, adapt)
        result = QueryResult(_shown(value), modality, embedding=embedding.numpy(), threads=self.threads_used)
        for target in targets or [m for m in MODALITIES if m != modality]:
            gallery = self.galleries.get(target)
            if gallery is None or len(gallery.ids) == 0:
                continue
            scores = gallery.embeddings @ embedding
            top = scores.topk(min(k, len(scores)))
            result.results[target] = [self._hit(gallery, int(i), float(s)) for s, i in zip(top.values, top.indices)]
        result.latency_ms = (time.perf_counter() - start) * 1e3
        return result

    @staticmethod
    def _hit(gallery: EmbeddedGallery, row: int, score: float) -> Hit:
        item = gallery.items[row]
        path = item.image if gallery.modality == "image" else item.audio if gallery.modality == "audio" else None
        caption = item.text if gallery.modality == "text" else None
        return Hit(gallery.modality, score, item.label, caption, str(path) if path is not None else None)

    def reset_memory(self) -> None:
        self.model.reset_memory()

    def memory_snapshot(self) -> dict:
        """The central memory's snapshot plus the audio domain memory ("audio_domains")."""
        snapshot = self.model.memory.snapshot()
        if "audio" in self.model.encoders:
            snapshot["audio_domains"] = self.model.encoders["audio"].domain.describe()
        return snapshot


def _shown(value) -> str:
    """How a query is named in results and messages: a path or text as given, a recording as such."""
    return "recording" if isinstance(value, tuple) else str(value)
