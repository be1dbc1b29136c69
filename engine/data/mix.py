"""The user's own items mixed with a share of the built-in set, for a fine-tune (`nlmm train --init`).

Teaching a trained model only the user's few items makes it forget the rest (the built-in test recall
falls); rehearsing built-in items in every batch keeps the old skills. The two sets stay two
`MultimodalDataset`s joined by a `ConcatDataset`, and a `WeightedRandomSampler` draws each batch so that
on average `share` of it comes from the built-in set, whatever the two sizes are.

Labels must mean the same thing in both sets, since the loss counts items of one label as positives:
- a folder whose labels are all numbers 0–99 shares the built-in set's labels ("42" is forty-two), and
  an item the user gave no image or caption of is completed with a built-in training image and a caption
  of its number, so that a recording alone already teaches "this is how I say forty-two";
- any other labels ("cat") are moved past the numbers, and an item without a label gets an id of its own
  (it is its own only positive).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import replace

import torch
from torch.utils.data import BatchSampler, ConcatDataset, Sampler, WeightedRandomSampler

from engine.data.builtin import NUM_LABELS, caption_forms
from engine.data.dataset import DataSplits, Item, MultimodalDataset
from engine.data.errors import DataError


def shares_number_labels(data: DataSplits) -> bool:
    """True when every label the source names is a number the built-in set knows (0–99)."""
    names = data.label_names.values()
    return bool(names) and all(name.isdigit() and int(name) < NUM_LABELS for name in names)


def teach_items(items: list[Item], data: DataSplits, builtin_train: list[Item]) -> list[Item]:
    """The user's items in the built-in label space (see the module docstring); deterministic."""
    if shares_number_labels(data):
        images: dict[int, list] = {}
        for item in builtin_train:
            if item.image is not None:
                images.setdefault(item.label, []).append(item.image)
        seen: dict[int, int] = {}
        out = []
        for item in items:
            if item.label is None:
                out.append(item)
                continue
            n = seen[item.label] = seen.get(item.label, -1) + 1   # the n-th item of its label
            choices = images.get(item.label, [])
            forms = caption_forms(item.label)
            out.append(replace(item, image=item.image or (choices[n % len(choices)] if choices else None),
                               text=item.text or forms[n % len(forms)]))
        return out
    named = len(data.label_names)
    return [replace(item, label=NUM_LABELS + (item.label if item.label is not None else named + i))
            for i, item in enumerate(items)]


def teach_splits(data: DataSplits, builtin: DataSplits) -> DataSplits:
    """Every split of the user's source through `teach_items`; a source with no items at all is refused."""
    if not any(data.splits.values()):
        raise DataError(f"{data.source}: no items to learn from (add some with \"Add to my data set\", or "
                        "write rows into its items.csv)")
    splits = {name: teach_items(items, data, builtin.splits["train"]) for name, items in data.splits.items()}
    return replace(data, splits=splits)


def every_item_taught(data: DataSplits) -> DataSplits:
    """All of a source's items as its train split (the studio's Teach: a user's few recordings are all
    for teaching, as in Teachable Machine; the before/after is measured on them)."""
    return replace(data, splits={"train": [item for items in data.splits.values() for item in items],
                                 "val": [], "test": []})


class MixedDataset(ConcatDataset):
    """The user's dataset then the built-in one; `epoch` reaches both (their per-epoch augmentation)."""

    def __init__(self, user: MultimodalDataset, builtin: MultimodalDataset):
        super().__init__([user, builtin])
        self.user, self.builtin = user, builtin

    @property
    def epoch(self) -> int:
        return self.user.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.user.epoch = self.builtin.epoch = value


class MixedBatchSampler(Sampler):
    """Batches over a MixedDataset, `share` of each from the built-in part on average.

    An epoch shows each user item about once. Its draws come from a generator seeded by (seed, epoch),
    and `position(step)` says where a step falls, so a resumed run draws exactly the batches an
    uninterrupted one would (the interface of the trainer's ResumableBatchSampler). Under DDP each rank
    takes its slice of every global batch."""

    def __init__(self, n_user: int, n_builtin: int, batch_size: int, share: float, seed: int,
                 rank: int = 0, world_size: int = 1):
        if n_user < 1:
            raise ValueError("a mixed batch needs at least one item of the user's own")
        self.n_user, self.n_builtin, self.batch_size, self.seed = n_user, n_builtin, batch_size, seed
        self.share = share if n_builtin else 0.0
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0
        user_weight = (1.0 - self.share) / n_user
        builtin_weight = self.share / n_builtin if n_builtin else 0.0
        self.weights = torch.tensor([user_weight] * n_user + [builtin_weight] * n_builtin, dtype=torch.double)

    def batches_per_epoch(self) -> int:
        per_batch = max(1.0, self.batch_size * (1.0 - self.share))
        return max(1, math.ceil(self.n_user / per_batch))

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start_batch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        draws = WeightedRandomSampler(self.weights, self.batches_per_epoch() * self.batch_size,
                                      replacement=True, generator=generator)
        batches = BatchSampler(draws, self.batch_size, drop_last=True)
        for batch in itertools.islice(batches, self.start_batch, None):
            yield batch[self.rank::self.world_size]

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the batch that global step `step` (1-based) consumes."""
        return divmod(step - 1, self.batches_per_epoch())
