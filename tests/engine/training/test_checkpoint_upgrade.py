"""Checkpoints of earlier versions still load and resume: the retired presence projection is dropped
from the weights and from the optimiser's state, and nothing else changes."""
import shutil
from pathlib import Path

import pytest
import torch

from engine.data.builtin import BUILTIN_ROOT, load_voices
from engine.data.dataset import DataSplits
from engine.data.handwriting import TRAIN_DIGITS, HandwritingSynth
from engine.data.sources import load_source
from engine.training.checkpoint import RETIRED, load_checkpoint, load_model
from engine.training.trainer import Trainer

# A 3-step run written by version 1 (fp32, d_model 16, the built-in train split's every 100th item),
# and the losses that version gave when the run was resumed to step 6.
V1_RUN = Path(__file__).parent / "data" / "v1-run"
V1_VOICES = {voice for voice, v in load_voices().items() if v["engine"] == "espeak-ng"}
V1_RESUMED_LOSSES = {4: 2.4801108837127686, 5: 1.7746658325195312, 6: 1.7575950622558594}


def test_a_version_1_checkpoint_loads_without_its_retired_weights():
    payload = load_checkpoint(V1_RUN / "checkpoint.pt")
    assert payload["version"] == 1 and set(RETIRED) <= set(payload["model"])
    model, _, _, _ = load_model(V1_RUN / "checkpoint.pt")
    assert not set(RETIRED) & set(model.state_dict())
    kept = {k: v for k, v in payload["model"].items() if k not in RETIRED}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in kept.items())


def test_a_version_1_run_resumes_with_the_losses_version_1_gave(tmp_path):
    # Version 1's data: the built-in set's espeak-ng items (its only engine then, the same files) and
    # handwriting alone for the drawn images.
    data = load_source("builtin")
    first_set = {split: [i for i in data.splits[split] if i.audio.parent.name in V1_VOICES] for split in ("train", "val")}
    subset = DataSplits("builtin-subset", {"train": first_set["train"][::100], "val": first_set["val"][::50]},
                        image_synth=HandwritingSynth(BUILTIN_ROOT / TRAIN_DIGITS))
    shutil.copytree(V1_RUN, tmp_path / "run")
    events = []
    trainer = Trainer(None, subset, tmp_path / "run", "cpu", 6, resume=True, tensorboard=False)
    trainer.subscribe(events.append)
    assert trainer.run().kind == "finished"
    losses = {e.step: e.loss for e in events if e.kind == "step"}
    assert losses == pytest.approx(V1_RESUMED_LOSSES, rel=1e-5)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["version"] == 2


def test_a_checkpoint_with_one_byte_changed_is_refused_by_its_digest(tmp_path):
    """One flipped byte in the weights loaded silently (a weight off by 69.3, and `nlmm export` then
    reported 0.0 difference). Checkpoints now carry their weights' digest, checked on load."""
    import pytest
    from engine.paths import DEFAULT_CHECKPOINT
    from engine.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    payload = load_checkpoint(DEFAULT_CHECKPOINT)
    path = save_checkpoint(tmp_path / "good.pt", {k: v for k, v in payload.items() if k not in ("format", "version")})
    assert load_checkpoint(path)["digest"]
    data = bytearray(path.read_bytes())
    data[int(len(data) * 0.6)] ^= 0x40
    broken = tmp_path / "flipped.pt"
    broken.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.pt: damaged: its weights do not match"):
        load_checkpoint(broken)


def test_a_checkpoint_without_a_usable_tokenizer_is_one_line(tmp_path):
    """`tokenizer: None` was a TypeError traceback in `nlmm query` and `bench robustness`."""
    import subprocess
    import sys
    import pytest
    from engine.paths import DEFAULT_CHECKPOINT
    from engine.training.checkpoint import CheckpointError, load_checkpoint
    payload = load_checkpoint(DEFAULT_CHECKPOINT)
    for n, tokenizer in enumerate((None, {"vocabulary": ["a", "b"]}, {"vocabulary": None})):
        path = tmp_path / f"tok{n}.pt"
        torch.save({**payload, "tokenizer": tokenizer}, path)
        with pytest.raises(CheckpointError, match="its tokenizer is missing or damaged"):
            load_checkpoint(path)
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "query", "--checkpoint", str(tmp_path / "tok0.pt"),
                           "--text", "seven"], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "tokenizer is missing" in proc.stderr
