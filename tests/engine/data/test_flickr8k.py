"""Flickr8k + FACC from a miniature copy of the release layout that the test builds itself."""
import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from engine.data.errors import DataError
from engine.data.flickr8k import load_flickr8k

IMAGES = {"train": ["1000_a.jpg", "1001_b.jpg", "1002_c.jpg"], "val": ["2000_d.jpg"], "test": ["3000_e.jpg", "3001_f.jpg"]}


def build_tree(root, image_dir="Flicker8k_Dataset", nested=False, karpathy=False, missing_wav=True):
    base = root / "Flickr8k" if nested else root
    (base / image_dir).mkdir(parents=True)
    (base / "flickr_audio" / "wavs").mkdir(parents=True)
    tokens, wav2capt, wav2spk = [], [], []
    for split, names in IMAGES.items():
        for i, name in enumerate(names):
            Image.fromarray(np.full((20, 30, 3), 40 * i, dtype=np.uint8)).save(base / image_dir / name)
            for n in range(5):
                tokens.append(f"{name}#{n}\tA dog number {n} runs in {split} .")
                if name == "1002_c.jpg":
                    continue  # this image has no spoken captions at all
                wav = f"{name[:-4]}_{n}.wav"
                wav2capt.append(f"{wav} {name} #{n}")
                wav2spk.append(f"{wav} {n % 2}")
                if not (missing_wav and name == "1000_a.jpg" and n == 3):
                    sf.write(base / "flickr_audio" / "wavs" / wav, 0.1 * np.ones(1600, dtype=np.float32), 16000)
    (base / "Flickr8k.token.txt").write_text("\n".join(tokens) + "\n")
    (base / "flickr_audio" / "wav2capt.txt").write_text("\n".join(wav2capt) + "\n")
    (base / "flickr_audio" / "wav2spk.txt").write_text("\n".join(wav2spk) + "\n")
    for split, filename in (("train", "trainImages"), ("val", "devImages"), ("test", "testImages")):
        (base / f"Flickr_8k.{filename}.txt").write_text("\n".join(IMAGES[split]) + "\n")
    if karpathy:
        entries = [{"filename": n, "split": "restval" if n == "1000_a.jpg" else "test" if n == "2000_d.jpg" else s}
                   for s, names in IMAGES.items() for n in names]
        (base / "dataset_flickr8k.json").write_text(json.dumps({"images": entries}))
    return root


@pytest.mark.parametrize("image_dir", ["Flicker8k_Dataset", "Flickr8k_Dataset"])
@pytest.mark.parametrize("nested", [False, True])
def test_standard_layout_both_spellings_and_one_folder_down(tmp_path, image_dir, nested):
    data = load_flickr8k(build_tree(tmp_path, image_dir, nested))
    train = data.splits["train"]
    assert len(train) == 15 and len(data.splits["val"]) == 5 and len(data.splits["test"]) == 10
    by_image = {}
    for item in train:
        by_image.setdefault(item.key, []).append(item)
    assert all(item.image.is_file() for item in train)
    assert sum(item.audio is not None for item in by_image["1000_a.jpg"]) == 4  # one wav missing
    assert all(item.audio is None for item in by_image["1002_c.jpg"])  # image-text only
    assert by_image["1001_b.jpg"][2].text == "A dog number 2 runs in train ."
    assert by_image["1001_b.jpg"][2].audio.name == "1001_b_2.wav"  # "#2" parsed, not crashed on
    assert data.skipped["missing audio"] == 1
    summary = data.summary()
    assert summary["train"] == {"items": 15, "images": 15, "texts": 15, "audios": 9}


def test_karpathy_split_wins_when_present(tmp_path):
    data = load_flickr8k(build_tree(tmp_path, karpathy=True))
    assert any("Karpathy" in note for note in data.notes)
    assert {i.key for i in data.splits["test"]} == {"2000_d.jpg", "3000_e.jpg", "3001_f.jpg"}
    assert "1000_a.jpg" in {i.key for i in data.splits["train"]}  # restval trains
    assert data.splits["val"] == []


def test_missing_image_keeps_text_and_audio(tmp_path):
    root = build_tree(tmp_path)
    (root / "Flicker8k_Dataset" / "3000_e.jpg").unlink()
    data = load_flickr8k(root)
    lost = [i for i in data.splits["test"] if i.key == "3000_e.jpg"]
    assert len(lost) == 5 and all(i.image is None and i.audio is not None for i in lost)
    assert data.skipped["missing image"] == 1


def test_not_a_flickr_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no Flickr8k.token.txt"):
        load_flickr8k(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_flickr8k(tmp_path / "nope")


def test_loading_reports_progress_over_the_images(tmp_path):
    calls = []
    data = load_flickr8k(build_tree(tmp_path), progress=lambda done, total: calls.append((done, total)))
    images = len({i.key for split in data.splits.values() for i in split})
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] >= images


def unpack_as_downloaded(root):
    """What unzipping each archive into a folder of its own name gives (finding 2 of issue 15):
    Flickr8k_Dataset/Flicker8k_Dataset/*.jpg (plus the zip's __MACOSX/ resource forks),
    Flickr8k_text/Flickr8k.token.txt …, flickr_audio/flickr_audio/wavs/*.wav."""
    flat = build_tree(root / "flat")
    (root / "Flickr8k_Dataset").mkdir()
    (flat / "Flicker8k_Dataset").rename(root / "Flickr8k_Dataset" / "Flicker8k_Dataset")
    forks = root / "Flickr8k_Dataset" / "__MACOSX" / "Flicker8k_Dataset"
    forks.mkdir(parents=True)
    for name in [n for names in IMAGES.values() for n in names]:
        (forks / f"._{name}").write_bytes(b"\0" * 82)
    (root / "Flickr8k_text").mkdir()
    for text in flat.glob("*.txt"):
        text.rename(root / "Flickr8k_text" / text.name)
    (root / "flickr_audio").mkdir()
    (flat / "flickr_audio").rename(root / "flickr_audio" / "flickr_audio")
    (root / "flat").rmdir()
    return root


def test_the_layout_as_unpacked_finds_every_image_at_any_depth(tmp_path):
    data = load_flickr8k(unpack_as_downloaded(tmp_path))
    summary = data.summary()
    assert summary["train"] == {"items": 15, "images": 15, "texts": 15, "audios": 9}
    assert data.missing == {} and "missing image" not in data.skipped
    assert all(i.image.parent == tmp_path / "Flickr8k_Dataset" / "Flicker8k_Dataset" for i in data.splits["train"])


def test_a_whole_missing_modality_is_reported_with_the_places_looked_at(tmp_path):
    root = build_tree(tmp_path)
    for image in (root / "Flicker8k_Dataset").iterdir():
        image.unlink()
    data = load_flickr8k(root)
    assert set(data.missing) == {"image"}
    message = data.missing_message("image")
    assert f"{root / 'Flicker8k_Dataset'} (0 of the 6 images)" in message
    assert "every folder up to 5 levels under" in message
    assert all(i.image is None for split in data.splits.values() for i in split)


def nlmm(*args):
    import subprocess
    import sys
    from pathlib import Path
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=Path(__file__).resolve().parents[3],
                          capture_output=True, text=True, timeout=300)


def test_data_info_and_train_say_so_loudly_and_train_needs_consent(tmp_path):
    root = build_tree(tmp_path / "flickr")
    for image in (root / "Flicker8k_Dataset").iterdir():
        image.unlink()
    info = nlmm("data", "info", "--data", f"flickr8k:{root}")
    assert info.returncode == 0, info.stderr
    assert f"MISSING: flickr8k:{root}: no image files found ({root / 'Flicker8k_Dataset'} (0 of the 6 images)" \
        in info.stdout
    refused = nlmm("train", "--data", f"flickr8k:{root}", "--steps", "1", "--out", str(tmp_path / "run"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].endswith("; to train without it anyway, pass --allow-missing image")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    allowed = nlmm("train", "--data", f"flickr8k:{root}", "--steps", "1", "--batch-size", "4",
                   "--allow-missing", "image", "--out", str(tmp_path / "run"))
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: training without image: " in allowed.stderr and (tmp_path / "run" / "checkpoint.pt").is_file()
