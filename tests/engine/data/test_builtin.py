"""Checks on the shipped built-in dataset (resources/builtin) and its reader."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # the project is not installed in the test venv
    sys.path.insert(0, str(REPO))

from engine.data.builtin import (  # noqa: E402
    BUILTIN_ROOT, BuiltinItem, by_label, caption_forms, load_audio, load_builtin_manifest, load_image, load_voices,
)
from engine.data.errors import DataError  # noqa: E402

# espeak-ng + festival + kokoro voices per number and split (scripts/builtin/speech.py)
EXPECTED_PER_LABEL = {"train": 16 + 6 + 16, "val": 4 + 1 + 3, "test": 6 + 2 + 4}
MAX_BYTES = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def splits() -> dict[str, list[BuiltinItem]]:
    return load_builtin_manifest()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((BUILTIN_ROOT / "manifest.json").read_text(encoding="utf-8"))


def _sample(items, n, seed):
    return random.Random(seed).sample(items, n)


def test_root_points_at_resources():
    assert BUILTIN_ROOT == REPO / "resources" / "builtin"
    assert (BUILTIN_ROOT / "README.md").is_file()


def test_split_sizes_and_labels(splits):
    assert set(splits) == {"train", "val", "test"}
    for name, per_label in EXPECTED_PER_LABEL.items():
        items = splits[name]
        assert len(items) == 100 * per_label, name
        groups = by_label(items)
        assert sorted(groups) == list(range(100)), name
        assert {len(g) for g in groups.values()} == {per_label}, name
    assert len(splits["test"]) >= 500


def test_every_file_exists_and_items_are_consistent(splits):
    for name, items in splits.items():
        images = [it.image for it in items]
        assert len(set(images)) == len(images), f"{name}: image reused"
        for it in items:
            assert it.image.is_file() and it.audio.is_file(), it
            assert it.image.suffix == ".png" and it.audio.suffix == ".ogg"
            assert it.audio.parent.name == it.voice and it.audio.stem == f"{it.label:02d}", it
            assert it.text in caption_forms(it.label), it
            assert len(it.samples) == len(str(it.label)) and it.writer == it.samples[0], it
        # one clip per (voice, label): an item never points at another label's clip
        assert len({(it.voice, it.label) for it in items}) == len({it.audio for it in items})


def test_handwriting_samples_disjoint(splits, manifest):
    used = {name: {s for it in items for s in it.samples} for name, items in splits.items()}
    assert not used["train"] & used["test"]
    assert not used["train"] & used["val"]
    assert not used["val"] & used["test"]
    pools = {name: set(ids) for name, ids in manifest["handwriting_samples"].items()}
    assert not (pools["train"] & pools["val"]) and not (pools["train"] & pools["test"]) and not (pools["val"] & pools["test"])
    assert pools["train"] | pools["val"] | pools["test"] == set(range(1797))
    assert 0.65 < len(pools["train"]) / 1797 < 0.75
    for name in used:
        assert used[name] <= pools[name], name


def test_voice_settings_disjoint(splits):
    voices = load_voices()
    used = {name: {it.voice for it in items} for name, items in splits.items()}
    assert not used["train"] & used["test"]
    assert not used["train"] & used["val"]
    assert not used["val"] & used["test"]
    assert len(used["train"]) >= 46 and len(used["val"]) >= 8 and len(used["test"]) >= 12
    espeak = [v for v in voices.values() if v["engine"] == "espeak-ng"]
    settings = {(v["voice"], v["variant"], v["speed"], v["pitch"]) for v in espeak}
    assert len(settings) == len(espeak) == 34
    for name, ids in used.items():
        assert all(voices[v]["split"] == name for v in ids), name
    # held-out espeak-ng voices are new variants, not only a new speed/pitch
    variants = {name: {voices[v]["variant"] for v in ids if voices[v]["engine"] == "espeak-ng"}
                for name, ids in used.items()}
    assert not variants["train"] & (variants["val"] | variants["test"])
    assert not any("whisper" in v.lower() for v in set().union(*variants.values()))


def test_images_decode(splits):
    for name, items in splits.items():
        for it in _sample(items, 8, seed=len(name)):
            img = load_image(it.image)
            assert img.shape == (32, 64) and img.dtype == np.uint8, it.image
            assert img.mean() < 128 and img.max() > 200, it.image  # light strokes on dark
            assert (img > 128).mean() > 0.03, it.image  # some ink, not a stray dot


def test_audio_decodes(splits):
    for name, items in splits.items():
        for it in _sample(items, 6, seed=len(name)):
            wave, sr = load_audio(it.audio)
            assert sr == 16000 and wave.ndim == 1 and wave.dtype == np.float32, it.audio
            assert 0.2 <= len(wave) / sr <= 3.0, it.audio
            assert np.abs(wave).max() <= 1.0, it.audio
            assert np.sqrt(np.mean(wave**2)) > 0.02, it.audio  # not silent
            # trimmed (the engines leave ~0.3 s of silence): at most 0.1 s below 0.02 at either end
            loud = np.flatnonzero(np.abs(wave) > 0.02)
            assert loud[0] < 0.1 * sr and len(wave) - loud[-1] < 0.1 * sr, it.audio


def test_caption_forms():
    forms42 = caption_forms(42)
    for form in ("forty two", "forty-two", "the number forty two", "42"):
        assert form in forms42
    assert forms42[0] == "forty two"
    assert {"seven", "7", "the number seven"} <= set(caption_forms(7))
    assert "thirteen" in caption_forms(13) and "thirteen" == caption_forms(13)[0]
    assert caption_forms(0)[0] == "zero" and caption_forms(90)[0] == "ninety"
    assert caption_forms(99)[:2] == ["ninety nine", "ninety-nine"]
    assert all(len(set(caption_forms(n))) == len(caption_forms(n)) for n in range(100))
    with pytest.raises(ValueError):
        caption_forms(100)
    stored = json.loads((BUILTIN_ROOT / "captions.json").read_text(encoding="utf-8"))
    assert stored == {str(n): caption_forms(n) for n in range(100)}


def test_captions_vary_within_label(splits):
    for label, group in by_label(splits["train"]).items():
        assert len({it.text for it in group}) == len(caption_forms(label)), label


def test_total_size():
    total = sum(p.stat().st_size for p in BUILTIN_ROOT.rglob("*") if p.is_file())
    assert 1_000_000 < total <= MAX_BYTES


def test_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        load_builtin_manifest(tmp_path / "nope")
    with pytest.raises(DataError, match="manifest.json"):
        load_builtin_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="JSON"):
        load_builtin_manifest(tmp_path)
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "a.ogg").write_bytes(b"not an ogg")
    item = {"image": "a.png", "text": "seven", "audio": "a.ogg", "label": 7, "voice": "v", "writer": 3, "samples": [3]}

    def write(train, val, test):
        body = {"splits": {"train": train, "val": val, "test": test}}
        (tmp_path / "manifest.json").write_text(json.dumps(body), encoding="utf-8")

    write([item], [item], [])
    with pytest.raises(DataError, match="'test'"):
        load_builtin_manifest(tmp_path)
    write([item], [item], [dict(item, label=100)])
    with pytest.raises(DataError, match=r"splits\.test\[0\].*label"):
        load_builtin_manifest(tmp_path)
    write([item], [item], [{k: v for k, v in item.items() if k != "voice"}])
    with pytest.raises(DataError, match="voice"):
        load_builtin_manifest(tmp_path)
    write([item], [item, dict(item, image="b.png")], [item])
    with pytest.raises(DataError, match="b.png"):
        load_builtin_manifest(tmp_path)
    assert len(load_builtin_manifest(tmp_path, check_files=False)["val"]) == 2
    write([item], [item], [item])
    loaded = load_builtin_manifest(tmp_path)
    assert loaded["test"][0] == BuiltinItem(tmp_path / "a.png", "seven", tmp_path / "a.ogg", 7, "v", 3, (3,),
                                            "espeak-ng")
    with pytest.raises(DataError, match="a.png"):
        load_image(tmp_path / "a.png")
    with pytest.raises(DataError, match="a.ogg"):
        load_audio(tmp_path / "a.ogg")


def test_reader_imports_no_heavy_dependencies():
    code = (
        "import sys; import engine.data.builtin as b; b.load_builtin_manifest(); "
        "bad = [m for m in ('torch', 'sklearn', 'torchaudio') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
