"""Embedded galleries kept on disk: read back exactly as embedded, and never when anything they depend on
(a file, the weights) changed."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.data.dataset import Item
from engine.data.sources import load_source
from engine.gallery_cache import GalleryCache
from engine.paths import DEFAULT_CHECKPOINT, ROOT
from engine.retrieval import Retriever


@pytest.fixture(scope="module")
def retriever():
    return Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")


@pytest.fixture
def items(tmp_path):
    """20 built-in test items copied into tmp_path (their files may then change), one image unreadable."""
    out = []
    for n, item in enumerate(load_source("builtin").splits["test"][:20]):
        image, audio = tmp_path / f"{n}.png", tmp_path / f"{n}.wav"
        shutil.copy(item.image, image)
        shutil.copy(item.audio, audio)
        out.append(Item(image=str(image), text=item.text, audio=str(audio), label=item.label, key=str(item.label)))
    Path(out[3].image).write_bytes(b"not a png")
    return out


def _snapshot(retriever):
    return {m: (g.embeddings.clone(), g.ids.clone(), [str(i.image or i.text or i.audio) for i in g.items])
            for m, g in retriever.galleries.items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[m][0], b[m][0]) and torch.equal(a[m][1], b[m][1])
                                        and a[m][2] == b[m][2] for m in a)


def test_a_cached_gallery_is_read_back_exactly_as_embedded(retriever, items, tmp_path):
    cache = GalleryCache(tmp_path / "cache")
    assert retriever.build_gallery(items, cache=cache) is False       # embedded, then kept
    embedded = _snapshot(retriever)
    assert len(embedded["image"][2]) == 19                             # the unreadable image has no row
    assert len(list(cache.folder.iterdir())) == 1
    assert retriever.build_gallery(items, cache=cache) is True        # read back
    assert _same(_snapshot(retriever), embedded)
    assert retriever.build_gallery(items) is False                    # no cache: embedded again, the same
    assert _same(_snapshot(retriever), embedded)


def test_a_changed_file_or_changed_weights_are_embedded_again(retriever, items, tmp_path):
    cache = GalleryCache(tmp_path / "cache")
    retriever.build_gallery(items, cache=cache)
    before = _snapshot(retriever)
    shutil.copy(items[1].image, items[0].image)                        # the user replaced a picture
    assert retriever.build_gallery(items, cache=cache) is False
    changed = _snapshot(retriever)
    assert torch.equal(changed["image"][0][0], changed["image"][0][1])
    assert not torch.equal(changed["image"][0][0], before["image"][0][0])
    weights = retriever.model.heads["text"].weight if hasattr(retriever.model.heads["text"], "weight") else \
        next(retriever.model.heads["text"].parameters())
    saved = weights.detach().clone()
    try:
        with torch.no_grad():
            weights.add_(0.01)
        assert retriever.build_gallery(items, cache=cache) is False    # other weights: not the cached rows
        assert not torch.equal(_snapshot(retriever)["text"][0], changed["text"][0])
    finally:
        with torch.no_grad():
            weights.copy_(saved)
    assert retriever.build_gallery(items, cache=cache) is True
    assert _same(_snapshot(retriever), changed)


def test_a_damaged_or_unwritable_cache_costs_only_an_embedding(retriever, items, tmp_path):
    cache = GalleryCache(tmp_path / "cache")
    retriever.build_gallery(items, cache=cache)
    embedded = _snapshot(retriever)
    (file,) = cache.folder.iterdir()
    file.write_bytes(file.read_bytes()[:100])
    assert retriever.build_gallery(items, cache=cache) is False
    assert _same(_snapshot(retriever), embedded)
    blocked = GalleryCache(tmp_path / "a-file")
    (tmp_path / "a-file").write_text("not a folder")
    assert retriever.build_gallery(items, cache=blocked) is False
    assert _same(_snapshot(retriever), embedded)


def _nlmm(*args, cache):
    env = {**os.environ, "NLMM_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_nlmm_query_answers_the_same_from_the_cache_and_rejects_a_bad_file_before_loading(tmp_path):
    first = _nlmm("query", "--text", "forty two", "--k", "3", "--json", cache=tmp_path)
    assert first.returncode == 0, first.stderr
    kept = list((tmp_path / "galleries").iterdir())
    assert len(kept) == 1
    stamp = kept[0].stat().st_mtime_ns
    again = _nlmm("query", "--text", "forty two", "--k", "3", "--json", cache=tmp_path)
    answer = lambda run: {k: v for k, v in json.loads(run.stdout).items() if k != "latency_ms"}  # noqa: E731
    assert again.returncode == 0 and answer(again) == answer(first)
    # long work says how far it is; the cached gallery has none to say
    shown = [line for line in first.stderr.splitlines() if "embedding the gallery" in line]
    assert shown and shown[-1].endswith("100 %") and "1,200 items" in shown[0], first.stderr
    assert "embedding the gallery" not in again.stderr
    assert list((tmp_path / "galleries").iterdir()) == kept and kept[0].stat().st_mtime_ns >= stamp
    # The file is read before the model: a checkpoint that does not exist is never reached.
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    bad = _nlmm("query", "--audio", str(empty), "--checkpoint", str(tmp_path / "none.pt"), cache=tmp_path)
    assert bad.returncode == 1
    assert "empty.wav: empty file (0 bytes)" in bad.stderr and "none.pt" not in bad.stderr
