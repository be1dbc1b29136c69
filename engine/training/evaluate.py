"""Recall@K in all six directions on a held-out split.

Each modality's gallery holds its distinct sources once (a Flickr8k image appears once, not once per
caption). A retrieved item is a hit when it has the query's identity: the same label when items carry
labels (any "forty two" answers "forty two"), otherwise the same pair key (the image's own captions).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.config import NLMMConfig
from engine.data.dataset import Collate, Item, MultimodalDataset, model_batch, prepared_batches
from engine.data.text import Tokenizer
from engine.device import autocast
from engine.query_views import encode_image_queries
from engine.threads import work_threads
from engine.vocabulary import DIRECTION_NAMES, DIRECTIONS, MODALITIES

KS = (1, 5, 10)


@dataclass
class EmbeddedGallery:
    modality: str
    embeddings: torch.Tensor  # (N, D), unit length, on the CPU
    ids: torch.Tensor         # (N,) identity for hits
    items: list[Item]         # the source of each row (path, caption, label) for display


def item_identity(items: list[Item]) -> list[int]:
    """Labels when every item has one, otherwise an id per pair key."""
    if items and all(item.label is not None for item in items):
        return [int(item.label) for item in items]
    keys: dict[str, int] = {}
    return [keys.setdefault(item.key, len(keys)) for item in items]


def distinct_sources(items: list[Item], ids: list[int], modality: str) -> tuple[list[Item], list[int]]:
    seen, out_items, out_ids = set(), [], []
    for item, identity in zip(items, ids):
        source = getattr(item, modality)
        if source is None:
            continue
        key = (str(source), identity)
        if key in seen:
            continue
        seen.add(key)
        only = Item(**{modality: source}, label=item.label, key=item.key)
        out_items.append(only)
        out_ids.append(identity)
    return out_items, out_ids


@torch.no_grad()
def embed_gallery(model, items: list[Item], ids: list[int], modality: str, cfg: NLMMConfig,
                  tokenizer: Tokenizer, device: torch.device, batch_size: int = 128,
                  progress=None, dataset_cache: dict | None = None, as_queries: bool = False) -> EmbeddedGallery:
    """`as_queries`: embed images as queries are, the mean of their shifted views (`engine.query_views`)."""
    sources, source_ids = distinct_sources(items, ids, modality)
    dataset = MultimodalDataset(sources, cfg)
    if dataset_cache is not None:
        dataset.cache = dataset_cache
    batches = -(-len(dataset) // batch_size)
    rows, kept, kept_ids = [], [], []
    model.eval()
    # a clip's reading lets go of the GIL and an image's mostly does not (2 threads read images slower)
    readers = work_threads() if modality == "audio" else 1
    for done, batch in enumerate(prepared_batches(dataset, Collate(tokenizer, cfg.text.max_tokens), batch_size,
                                                  readers)):
        inputs = model_batch(batch, device)
        if modality in inputs:
            with autocast(cfg.precision, device):
                if as_queries and modality == "image":
                    rows.append(encode_image_queries(model, inputs["image"]).cpu())
                else:
                    rows.append(model.encode(modality, inputs[modality], inputs.get(f"{modality}_mask")).float().cpu())
            for position in batch[f"{modality}_index"].tolist():  # unreadable files drop out
                index = int(batch["items"][position])
                kept.append(sources[index])
                kept_ids.append(source_ids[index])
        if progress is not None:
            progress(done + 1, batches)
    embeddings = torch.cat(rows) if rows else torch.zeros(0, cfg.d_model)
    return EmbeddedGallery(modality, embeddings, torch.tensor(kept_ids, dtype=torch.long), kept)


def recall_at(queries: EmbeddedGallery, gallery: EmbeddedGallery, ks=KS) -> dict[str, float]:
    if len(queries.ids) == 0 or len(gallery.ids) == 0:
        return {f"R@{k}": 0.0 for k in ks}
    scores = queries.embeddings @ gallery.embeddings.T
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hits = gallery.ids[top] == queries.ids[:, None]
    # hits / queries in Python floats: a float32 mean makes 540 of 600 read 0.89999998, below a 0.90 target
    return {f"R@{k}": int(hits[:, :k].any(dim=1).sum()) / len(queries.ids) for k in ks}


def evaluate(model, items: list[Item], cfg: NLMMConfig, tokenizer: Tokenizer, device: torch.device,
             batch_size: int = 128, progress=None) -> dict[str, dict[str, float]]:
    """{"image->text": {"R@1", "R@5", "R@10"}, …} for every direction both of whose modalities exist.
    Image queries are embedded as live queries are (shifted views); the galleries keep one view."""
    ids = item_identity(items)
    present = [m for m in MODALITIES if any(getattr(i, m) is not None for i in items)]
    galleries = {m: embed_gallery(model, items, ids, m, cfg, tokenizer, device, batch_size) for m in present}
    queries = dict(galleries)
    if "image" in galleries:
        queries["image"] = embed_gallery(model, items, ids, "image", cfg, tokenizer, device, batch_size,
                                         as_queries=True)
    if progress is not None:
        progress(len(present), len(present))
    usable = {m for m, g in galleries.items() if len(g.ids)}  # every file of a modality may have failed
    return {name: recall_at(queries[q], galleries[g])
            for (q, g), name in zip(DIRECTIONS, DIRECTION_NAMES) if q in usable and g in usable}


def format_recall_table(recall: dict[str, dict[str, float]]) -> str:
    lines = [f"{'direction':<14}{'R@1':>8}{'R@5':>8}{'R@10':>8}"]
    for direction, values in recall.items():
        lines.append(f"{direction:<14}" + "".join(f"{100 * values[f'R@{k}']:>7.1f}%" for k in KS))
    return "\n".join(lines)
