"""Fixtures for the studio: a microphone that plays a known clip, a small data set, a small checkpoint,
a window wired to them, and guards that fail a test on an exception in a slot or a thread left running.

The microphone is ALSA's `file` plugin as the default capture device (docs: TESTING.md, recipe A). ALSA
reads its configuration once, when PortAudio initialises (when sounddevice is first imported), so the
configuration is written and ALSA_CONFIG_PATH set here, at collection, before any studio code runs.
"""
from __future__ import annotations

import csv
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "resources" / "builtin"
MIC_DIR = Path(tempfile.mkdtemp(prefix="nlmm-test-mic-"))
MIC_CLIP = MIC_DIR / "clip.raw"
MIC_RATE = 16000


def _write_test_microphone() -> np.ndarray:
    """A spoken number (int16, 16 kHz mono) then silence, longer than any recording the studio makes."""
    clip, rate = sf.read(str(sorted((BUILTIN / "audio").glob("*/42.ogg"))[0]), dtype="float32")
    assert rate == MIC_RATE
    samples = np.zeros(MIC_RATE * 6, dtype=np.int16)
    samples[: len(clip)] = np.round(np.clip(clip, -1, 1) * 32767).astype(np.int16)
    samples.tofile(MIC_CLIP)
    (MIC_DIR / "asound.conf").write_text(
        'pcm.!default {\n'
        '    type asym\n'
        '    playback.pcm "null"\n'
        f'    capture.pcm {{ type file; slave.pcm "null"; file "/dev/null"; infile "{MIC_CLIP}"; format "raw" }}\n'
        '}\n')
    return samples


MIC_SAMPLES = _write_test_microphone()
if "sounddevice" not in sys.modules:
    os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{MIC_DIR / 'asound.conf'}"
MIC_CONFIGURED = os.environ.get("ALSA_CONFIG_PATH", "").endswith("asound.conf")


# ---------------------------------------------------------------- data and a checkpoint

def small_config_dict(steps: int = 4) -> dict:
    from engine.config import config_to_dict, load_config
    data = config_to_dict(load_config("tiny"))
    data.update(name="studiotest", d_model=32, n_heads=2, L_mem=8, ffn_mult=2)
    data["depth"] = {"text": 1, "image": 1, "audio": 1}
    data["cms_levels"] = [{"name": "fast", "chunk_size": 1, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.0},
                          {"name": "slow", "chunk_size": 3, "lr": 1e-2, "optimizer": "dmgd", "weight_decay": 0.0}]
    data["ttt"]["topk"] = 2
    data["data"]["batch_size"] = 8
    data["train"].update(steps=steps, warmup_steps=2, eval_every=1000, checkpoint_every=1000)
    return data


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A folder data set pointing at built-in files: 48 train, 8 val, 12 test items."""
    from engine.data.builtin import load_builtin_manifest
    manifest = load_builtin_manifest()
    root = tmp_path_factory.mktemp("data")
    with (root / "items.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "text", "audio", "label", "split"])
        for split, stride, count in (("train", 33, 48), ("val", 50, 8), ("test", 50, 12)):
            for item in manifest[split][::stride][:count]:
                writer.writerow([item.image, item.text, item.audio, item.label, split])
    return root


@pytest.fixture(scope="session")
def config_path(tmp_path_factory) -> Path:
    from engine.config import config_from_dict, save_config
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    save_config(config_from_dict(small_config_dict()), path)
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, data_dir) -> Path:
    """A real checkpoint of the small config, trained for a few steps."""
    from engine.config import config_from_dict
    from engine.training.trainer import Trainer
    out = tmp_path_factory.mktemp("checkpoint")
    Trainer(config_from_dict(small_config_dict(steps=3)), data=f"folder:{data_dir}", out_dir=out,
            tensorboard=False).run()
    return out / "checkpoint.pt"


# ---------------------------------------------------------------- guards

@pytest.fixture(autouse=True)
def fail_on_exceptions_in_slots(monkeypatch):
    """PySide6 catches exceptions raised in slots and only prints them: record them and fail the test."""
    caught: list[str] = []

    def hook(kind, value, tb):
        import traceback
        caught.append("".join(traceback.format_exception(kind, value, tb)))

    monkeypatch.setattr(sys, "excepthook", hook)
    monkeypatch.setattr(threading, "excepthook", lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback))
    yield caught
    assert not caught, "exception(s) in Qt slots or threads:\n" + "\n".join(caught)


@pytest.fixture(autouse=True)
def no_threads_left_running():
    """Every engine / trainer thread a test started must be gone when it ends (napari's idea)."""
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("nlmm-") and t.is_alive()]
    for thread in left:
        thread.join(30)
    still = [t.name for t in left if t.is_alive()]
    assert not still, f"threads left running: {still}"


# ---------------------------------------------------------------- the window

@pytest.fixture
def make_window(qtbot, tmp_path, data_dir, config_path, checkpoint):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from studio import bootstrap
    from studio.dialogs import ScriptedDialogs
    from studio.main_window import MainWindow, StudioOptions
    bootstrap.configure(QApplication.instance())     # as every entry point does
    windows = []

    def make(load_checkpoint: bool = True, **overrides) -> MainWindow:
        options = StudioOptions(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                                runs_dir=tmp_path / "runs", checkpoint=str(checkpoint), config=str(config_path),
                                gallery_source=f"folder:{data_dir}", gallery_split="test", gallery_size=12,
                                dialogs=ScriptedDialogs(), load_checkpoint_on_start=load_checkpoint)
        for key, value in overrides.items():
            setattr(options, key, value)
        window = MainWindow(options)
        window.errors = []

        def activate(bot):
            bot.waitExposed(window)
            window.activateWindow()
            bot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
        window.activate = activate
        window.host.failed.connect(lambda title, message: window.errors.append((title, message)))
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.host.threads(), "the engine's threads outlived the window"


@pytest.fixture
def ready_window(make_window, qtbot):
    """A window whose checkpoint is loaded and gallery embedded, ready for queries."""
    window = make_window()
    qtbot.waitUntil(lambda: window.retrieval_panel.gallery_ready or bool(window.errors), timeout=90_000)
    assert not window.errors, window.errors
    return window


@pytest.fixture
def test_microphone() -> np.ndarray:
    """The int16 samples the test capture device plays (see the module docstring)."""
    if not MIC_CONFIGURED:
        pytest.fail("sounddevice was imported before tests/studio/conftest.py could point ALSA at the test "
                    "microphone; run the studio tests in their own process")
    return MIC_SAMPLES
