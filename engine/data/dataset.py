"""Items of any source become `torch.utils.data` samples and padded batches.

An item may miss modalities (a Flickr8k image with no spoken caption trains image-text only). A batch
therefore carries, per modality, the rows it has and `<m>_index`: which batch positions they belong
to; the loss pairs two modalities over the positions both have.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from engine.config import NLMMConfig
from engine.data.audio import LogMel, fit_length, load_audio
from engine.data.audio_augment import SpeechAugment, augment_mel
from engine.data.errors import DataError
from engine.data.image import load_image, prepare_image
from engine.data.text import Tokenizer
from engine.vocabulary import BATCH_KEYS, MODALITIES, SPLITS

PROGRESS_EVERY = 200   # items a loader looks at between two progress calls (engine.data.sources)


@dataclass
class Item:
    """One example. `label` groups items that count as the same thing for retrieval (a spoken number);
    `key` names the underlying pair (a Flickr8k image id) when there are no labels."""
    image: Path | None = None
    text: str | None = None
    audio: Path | None = None
    label: int | None = None
    key: str = ""

    def modalities(self) -> list[str]:
        return [m for m in MODALITIES if getattr(self, m) is not None]


@dataclass
class DataSplits:
    source: str
    splits: dict[str, list[Item]]
    skipped: Counter = field(default_factory=Counter)  # reason -> count, for `nlmm data info`
    notes: list[str] = field(default_factory=list)       # reported once, e.g. "using Karpathy's split"
    # label, rng -> a fresh image of that label (a PIL image or uint8 light-on-dark array; training-time
    # augmentation), when the source has one
    image_synth: Callable[[int, np.random.Generator], "np.ndarray | Image.Image"] | None = None
    # modality -> where it was looked for: a modality the source should have, of which not one file was found
    missing: dict[str, str] = field(default_factory=dict)
    # label id -> the name the user gave it (a folder's label column), when the source names its labels
    label_names: dict[int, str] = field(default_factory=dict)

    def captions(self, split: str = "train") -> list[str]:
        return [item.text for item in self.splits.get(split, []) if item.text]

    def summary(self) -> dict:
        info = {}
        for split in SPLITS:
            items = self.splits.get(split, [])
            info[split] = {"items": len(items),
                           "images": sum(i.image is not None for i in items),
                           "texts": sum(i.text is not None for i in items),
                           "audios": sum(i.audio is not None for i in items)}
        info["skipped"] = dict(self.skipped)
        info["missing"] = dict(self.missing)
        return info

    def missing_message(self, modality: str) -> str:
        return f"{self.source}: no {modality} files found ({self.missing[modality]})"


class MultimodalDataset(Dataset):
    """Loads and prepares one item per index. Files that fail to load drop that modality of the
    item (the message travels in the sample's "errors"); prepared tensors can be cached in memory."""

    def __init__(self, items: list[Item], cfg: NLMMConfig, cache: bool = False,
                 image_synth=None, synth_prob: float = 0.75, seed: int = 0,
                 audio_augment: SpeechAugment | None = None):
        self.items, self.cfg = items, cfg
        self.log_mel = LogMel(cfg.audio)
        self.max_samples = int(cfg.audio.max_seconds * cfg.audio.sample_rate)
        self.cache: dict | None = {} if cache else None
        # Training only: most images are drawn afresh and every clip goes through a microphone-and-room
        # chain, from generators seeded by (seed, epoch, index), so that a resumed run sees exactly the
        # samples an uninterrupted one would.
        self.image_synth, self.synth_prob, self.seed, self.epoch = image_synth, synth_prob, seed, 0
        self.audio_augment = audio_augment
        self._with_audio = [i for i, item in enumerate(items) if item.audio is not None]

    def __len__(self) -> int:
        return len(self.items)

    def _cached(self, key, make):
        if self.cache is None:
            return make()
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def image(self, path: Path) -> torch.Tensor:
        return self._cached(("image", path), lambda: load_image(path, self.cfg.image))

    def _load_wave(self, path: Path) -> np.ndarray:
        return load_audio(path, self.cfg.audio.sample_rate, self.cfg.audio.max_seconds)

    def wave(self, path: Path) -> np.ndarray:
        return self._cached(("wave", path), lambda: self._load_wave(path))

    def audio(self, path: Path) -> torch.Tensor:
        def make():
            return self.log_mel(torch.from_numpy(fit_length(self._load_wave(path), self.max_samples)))
        return self._cached(("audio", path), make)

    def augmented_audio(self, path: Path, rng: np.random.Generator) -> torch.Tensor:
        wave = self.audio_augment(self.wave(path), rng, self._other_clip)
        return augment_mel(self.log_mel(torch.from_numpy(fit_length(wave, self.max_samples))), rng)

    def _other_clip(self, rng: np.random.Generator) -> np.ndarray:
        """Another item's clip, for babble noise (a clip that fails to load gives silence)."""
        item = self.items[self._with_audio[int(rng.integers(len(self._with_audio)))]]
        try:
            return self.wave(item.audio)
        except DataError:
            return np.zeros(1, np.float32)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        sample = {"index": index, "label": -1 if item.label is None else item.label,
                  "text": item.text, "image": None, "audio": None, "errors": []}
        if self.image_synth is not None and item.label is not None and item.image is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if rng.random() < self.synth_prob:
                drawn = self.image_synth(item.label, rng)
                if isinstance(drawn, np.ndarray):
                    drawn = Image.fromarray(drawn, "L")
                try:
                    sample["image"] = prepare_image(drawn, self.cfg.image, "drawn number")
                except DataError:  # a drawing that came out blank: the stored image stands in
                    sample["image"] = None
        audio = self.audio
        if self.audio_augment is not None:
            rng_audio = np.random.default_rng([self.seed, self.epoch, index, 1])
            audio = lambda path: self.augmented_audio(path, rng_audio)  # noqa: E731
        for modality, load in (("image", self.image), ("audio", audio)):
            path = getattr(item, modality)
            if path is not None and sample[modality] is None:
                try:
                    sample[modality] = load(path)
                except DataError as err:
                    sample["errors"].append(str(err))
        return sample


class Collate:
    """Samples -> a padded batch: tokens + mask, images, log-mels + frame mask, per-modality indices."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int):
        self.tokenizer, self.max_tokens = tokenizer, max_tokens

    def __call__(self, samples: list[dict]) -> dict:
        batch: dict = {"items": torch.tensor([s["index"] for s in samples]),
                       "labels": torch.tensor([s["label"] for s in samples]),
                       "errors": [e for s in samples for e in s["errors"]]}
        texts = [(i, s["text"]) for i, s in enumerate(samples) if s["text"] is not None]
        encoded = []
        for i, text in texts:
            try:
                encoded.append((i, self.tokenizer.encode(text, self.max_tokens)))
            except DataError as err:
                batch["errors"].append(str(err))
        if encoded:
            length = max(len(ids) for _, ids in encoded)
            tokens = torch.zeros(len(encoded), length, dtype=torch.long)
            for row, (_, ids) in enumerate(encoded):
                tokens[row, : len(ids)] = torch.tensor(ids)
            batch["text"], batch["text_mask"] = tokens, tokens != 0
            batch["text_index"] = torch.tensor([i for i, _ in encoded])
        images = [(i, s["image"]) for i, s in enumerate(samples) if s["image"] is not None]
        if images:
            batch["image"] = torch.stack([img for _, img in images])
            batch["image_index"] = torch.tensor([i for i, _ in images])
        mels = [(i, s["audio"]) for i, s in enumerate(samples) if s["audio"] is not None]
        if mels:
            frames = max(mel.shape[-1] for _, mel in mels)
            audio = torch.zeros(len(mels), mels[0][1].shape[0], frames)
            mask = torch.zeros(len(mels), frames, dtype=torch.bool)
            for row, (_, mel) in enumerate(mels):
                audio[row, :, : mel.shape[-1]] = mel
                mask[row, : mel.shape[-1]] = True
            batch["audio"], batch["audio_mask"] = audio, mask
            batch["audio_index"] = torch.tensor([i for i, _ in mels])
        return batch


def model_batch(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors of a collated batch that the model reads, on its device (a batch also carries the
    items, their labels and the errors met while loading them)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k in BATCH_KEYS}


def prepared_batches(dataset: MultimodalDataset, collate: Collate, batch_size: int, threads: int):
    """The data set's items in order, collated in batches, each batch's items prepared by `threads` threads
    together. Decoding a clip (libsndfile) and its log-mel (torch) let go of the GIL, so a gallery's clips
    are read on every core: 2 threads read the built-in test split's clips in 1.7 s instead of 3.4. The
    batch is embedded after it is ready, not beside the next one's preparation: on as many threads as
    cores, the encoder's spinning threads and the readers would take each other's cores. (DataLoader's
    worker processes cost more to start than a built-in gallery takes to read.)"""
    from concurrent.futures import ThreadPoolExecutor

    def prepare(index: int) -> dict:
        torch.set_num_threads(1)   # per thread: the consumer's own intra-op threads stay as they are
        return dataset[index]

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="nlmm-prepare") as pool:
        for start in range(0, len(dataset), batch_size):
            yield collate(list(pool.map(prepare, range(start, min(start + batch_size, len(dataset))))))


def make_loader(dataset: MultimodalDataset, collate: Collate, batch_size: int, train: bool,
                seed: int = 0, num_workers: int = 0) -> DataLoader:
    """Deterministic given the seed: the shuffle order comes from its own generator."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) > batch_size,
                      collate_fn=collate, num_workers=num_workers, generator=generator,
                      persistent_workers=num_workers > 0)
