"""Datasets and batches: shapes, masks, missing modalities, bad files, determinism."""
import numpy as np
import soundfile as sf
import torch

from engine.config import load_config
from engine.data.dataset import Collate, Item, MultimodalDataset, make_loader, prepared_batches
from engine.data.sources import load_source
from engine.data.text import Tokenizer


def test_builtin_batches_have_the_model_shapes_and_dtypes():
    cfg = load_config("tiny")
    data = load_source("builtin")
    tokenizer = Tokenizer.build(data.captions("train"), cfg.text.vocab_size)
    dataset = MultimodalDataset(data.splits["train"][:16], cfg)
    batch = next(iter(make_loader(dataset, Collate(tokenizer, cfg.text.max_tokens), 8, train=True)))
    assert batch["image"].shape == (8, 1, 32, 64) and batch["image"].dtype == torch.float32
    assert batch["audio"].shape[:2] == (8, 80) and batch["audio_mask"].dtype == torch.bool
    assert batch["audio_mask"].sum(-1).min() > 10
    assert batch["text"].dtype == torch.long and batch["text_mask"].shape == batch["text"].shape
    for m in ("text", "image", "audio"):
        assert batch[f"{m}_index"].tolist() == list(range(8))
    assert batch["labels"].min() >= 0 and batch["errors"] == []


def test_missing_modalities_and_bad_files_keep_the_batch_going(tmp_path):
    cfg = load_config("tiny")
    good = tmp_path / "good.wav"
    sf.write(good, 0.3 * np.sin(np.arange(8000) / 3.0).astype(np.float32), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage")
    items = [Item(text="forty two", audio=good, label=42), Item(text="seven", audio=bad, label=7),
             Item(text="!!", audio=good, label=1)]
    collate = Collate(Tokenizer.build(["forty two", "seven"], 32), 16)
    batch = collate([MultimodalDataset(items, cfg)[i] for i in range(3)])
    assert batch["audio_index"].tolist() == [0, 2]
    assert batch["text_index"].tolist() == [0, 1]  # "!!" has no words
    assert "image" not in batch
    assert any("bad.wav" in e for e in batch["errors"]) and any("no words" in e for e in batch["errors"])
    assert batch["audio_mask"].sum(-1).tolist() == [51, 51]


def test_loader_order_is_deterministic_given_a_seed():
    cfg = load_config("tiny")
    data = load_source("builtin")
    tokenizer = Tokenizer.build(data.captions("train"), cfg.text.vocab_size)
    items = [Item(text=i.text, label=i.label) for i in data.splits["train"][:40]]
    collate = Collate(tokenizer, 16)

    def order(seed):
        return [b["items"].tolist() for b in make_loader(MultimodalDataset(items, cfg), collate, 8, True, seed)]
    assert order(1) == order(1) and order(1) != order(2)


def test_batches_read_by_several_threads_are_the_items_in_order_as_one_thread_reads_them(tmp_path):
    cfg = load_config("tiny")
    data = load_source("builtin")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage")
    items = [Item(audio=i.audio, label=i.label) for i in data.splits["test"][:21]]
    items[5] = Item(audio=bad, label=3)
    collate = Collate(Tokenizer.build(["one"], 32), 16)

    def read(threads):
        return list(prepared_batches(MultimodalDataset(items, cfg), collate, 8, threads))
    one, three = read(1), read(3)
    assert [b["items"].tolist() for b in three] == [list(range(0, 8)), list(range(8, 16)), list(range(16, 21))]
    assert three[0]["audio_index"].tolist() == [0, 1, 2, 3, 4, 6, 7]   # the unreadable clip drops out
    assert any("bad.wav" in e for e in three[0]["errors"])
    for a, b in zip(one, three):
        assert torch.equal(a["audio"], b["audio"]) and torch.equal(a["audio_mask"], b["audio_mask"])
