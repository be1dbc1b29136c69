"""Whole sources are held out of training: no training sample comes from a held-out engine, voice pack,
font family, stroke family or recorded room. Checked over the shipped manifest and training files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data.audio_augment import RIRS_FILE, SpeechAugment
from engine.data.builtin import BUILTIN_ROOT, load_builtin_manifest, load_heldout, load_voices
from engine.data.number_images import NumberImageSynth
from engine.data.printed import GLYPHS_FILE, HANDWRITING_FILE, handwriting_styles
from engine.data.sketched import STROKES_FILE


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((BUILTIN_ROOT / "manifest.json").read_text(encoding="utf-8"))


def test_the_held_out_engine_speaks_no_training_validation_or_test_item():
    splits, heldout, voices = load_builtin_manifest(), load_heldout(), load_voices()
    held_engines = {item.engine for item in heldout["speech_engine"]}
    assert held_engines == {"flite"}
    for name, items in splits.items():
        assert not {item.engine for item in items} & held_engines, name
        assert {voices[item.voice]["engine"] for item in items} == {item.engine for item in items}
    assert len(heldout["speech_engine"]) >= 500
    assert all(voices[item.source]["split"] == "heldout" for item in heldout["speech_engine"])


def test_every_engine_trains_and_is_tested_on_voices_training_never_hears():
    splits, voices = load_builtin_manifest(), load_voices()
    train_voices = {item.voice for item in splits["train"]}
    for name in ("val", "test"):
        engines = {item.engine for item in splits[name]}
        assert engines == {"espeak-ng", "festival", "kokoro"}, name
        assert not {item.voice for item in splits[name]} & train_voices, name
    # a kokoro voice pack is a speaker: every val/test kokoro voice holds a pack no training voice mixes
    packs = {split: set() for split in ("train", "val", "test")}
    for voice in voices.values():
        if voice["engine"] == "kokoro":
            packs[voice["split"]] |= set(voice["mix"])
    for name in ("val", "test"):
        for voice in (v for v in voices.values() if v["engine"] == "kokoro" and v["split"] == name):
            assert set(voice["mix"]) - packs["train"], voice["id"]
    # festival's unseen speaker is ked: training hears only kal and slt
    trained = {voices[v]["voice"] for v in train_voices if voices[v]["engine"] == "festival"}
    assert "ked_diphone" not in trained


def test_held_out_fonts_and_stroke_families_never_reach_training(manifest):
    families = manifest["font_families"]
    assert families["train"] and families["heldout"] and not set(families["train"]) & set(families["heldout"])
    train_fonts = set(manifest["fonts"]["train"])
    with np.load(BUILTIN_ROOT / GLYPHS_FILE) as glyphs:
        shipped = [str(n) for n in glyphs["train_font_names"]]
        assert set(shipped) == train_fonts and glyphs["train_fonts"].shape == (len(shipped), 10, 32, 32)
        assert set(glyphs.files) == {"train_fonts", "train_font_names"}  # no held-out font's digits ship
    heldout = load_heldout()
    assert len(heldout["fonts"]) >= 300 and len(heldout["strokes"]) >= 200
    assert not {item.source for item in heldout["fonts"]} & train_fonts
    assert {item.family for item in heldout["fonts"]} <= set(families["heldout"])
    strokes = json.loads((BUILTIN_ROOT / STROKES_FILE).read_text())
    assert {split: set(families) for split, families in strokes.items()} == \
        {split: set(families) for split, families in manifest["stroke_families"].items()}
    assert {item.source for item in heldout["strokes"]}.isdisjoint(strokes["train"])
    assert {item.source for item in heldout["strokes"]} <= set(strokes["heldout"])


def test_held_out_hands_never_reach_training_and_no_hand_is_in_two_places(manifest):
    """A hand (a handwriting group: one font's weights, a calligrapher's faces) is trained on or held out,
    never both; none of its fonts is among the built-in set's fonts or the correction styles."""
    with np.load(BUILTIN_ROOT / HANDWRITING_FILE) as data:
        groups = {split: set(data[f"{split}_groups"].tolist()) for split in ("train", "heldout")}
        names = {split: set(data[f"{split}_names"].tolist()) for split in ("train", "heldout")}
        assert data["train"].shape == (len(data["train_names"]), 10, 32, 32)
    assert len(groups["train"]) >= 10 and len(groups["heldout"]) >= 5
    assert not groups["train"] & groups["heldout"] and not names["train"] & names["heldout"]
    families = {name.rsplit(" ", 1)[0] for name in names["train"] | names["heldout"]}
    built_in = set(manifest["fonts"]["train"]) | set(manifest["fonts"]["heldout"])
    assert not {name.rsplit(" ", 1)[0] for name in built_in} & families
    assert not set(handwriting_styles()) & (names["train"] | names["heldout"])


def test_training_images_come_only_from_training_sources():
    synth = NumberImageSynth.from_folder(BUILTIN_ROOT)
    assert set(synth.names) == {"handwritten", "handwriting font", "printed", "sketched", "sketch pad"}
    with np.load(BUILTIN_ROOT / GLYPHS_FILE) as glyphs:
        assert np.array_equal(synth.ways["printed"].atlas, glyphs["train_fonts"])
    with np.load(BUILTIN_ROOT / HANDWRITING_FILE) as hands:
        assert np.array_equal(synth.ways["handwriting font"].atlas, hands["train"])
    trained = sorted(json.loads((BUILTIN_ROOT / STROKES_FILE).read_text())["train"])
    assert synth.ways["sketched"].names == trained and synth.ways["sketch pad"].names == trained


def test_training_rooms_are_simulated_and_the_recorded_rooms_stay_out():
    augment = SpeechAugment.from_folder(BUILTIN_ROOT, 16000)
    with np.load(BUILTIN_ROOT / RIRS_FILE) as rirs:
        assert len(augment.rooms) == len(rirs["train_lengths"]) >= 32
        recorded = [rirs["heldout"][i, :n].astype(np.float32) for i, n in enumerate(rirs["heldout_lengths"])]
        assert len(recorded) >= 4
    for room in augment.rooms:
        assert not any(len(room) == len(r) and np.allclose(room, r) for r in recorded)
