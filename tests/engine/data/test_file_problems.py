"""What is wrong with a file is said before its format is blamed, the same way for images, recordings and
checkpoints: /dev/zero is a device (not "empty"), a folder is a folder, an ONNX export is not a checkpoint,
and a strip of noise has no writing (not "a single flat colour")."""
import os
import stat

import numpy as np
import pytest
from PIL import Image

from engine.config import ImageConfig
from engine.data.audio import load_audio
from engine.data.errors import DataError, file_problem
from engine.data.image import load_image, open_image
from engine.training.checkpoint import CheckpointError, load_checkpoint


def test_a_device_a_folder_a_pipe_and_an_empty_file_are_named_as_such(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cases = {"/dev/zero": "a device, not {}", str(tmp_path): "a folder, not {}",
             str(pipe): "a pipe, not {}", str(empty): "empty file (0 bytes)",
             str(tmp_path / "gone.png"): "file not found"}
    for path, said in cases.items():
        assert file_problem(path) == said.format("a file")
        for read, what in ((open_image, "an image file"), (lambda p: load_audio(p, 16000, 2.0), "an audio file")):
            with pytest.raises(DataError) as caught:
                read(path)
            assert str(caught.value) == f"{path}: {said.format(what)}"
    assert stat.S_ISFIFO(pipe.stat().st_mode)     # never opened: opening a pipe would wait for a writer


def test_a_file_this_user_may_not_read_is_said_so():
    """As root every file reads, so the check runs as the unprivileged user `nobody` (setpriv)."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    folder = Path(tempfile.mkdtemp(prefix="nlmm-locked-"))   # in /tmp, which any user may walk through
    folder.chmod(0o755)
    locked = folder / "locked.png"
    Image.new("L", (8, 8)).save(locked)
    locked.chmod(0)
    code = ("import sys; from engine.data.image import open_image\n"
            "try:\n    open_image(sys.argv[1])\nexcept Exception as err:\n    print(err)")
    command = [sys.executable, "-c", code, str(locked)]
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "setpriv (util-linux) runs the check as another user"
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": root})
    shutil.rmtree(folder)
    assert out.stdout.strip() == f"{locked}: permission denied (this user may not read it)", out.stderr


def test_an_onnx_export_or_a_device_given_as_a_checkpoint_says_what_it_is(tmp_path):
    onnx = tmp_path / "image.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch")      # a protobuf, as ONNX files start
    with pytest.raises(CheckpointError, match=r"image.onnx: not a readable checkpoint: an ONNX model"):
        load_checkpoint(onnx)
    other = tmp_path / "notes.pt"
    other.write_text("my notes")
    with pytest.raises(CheckpointError, match="not a PyTorch file"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="/dev/zero: a device, not a checkpoint file"):
        load_checkpoint("/dev/zero")


def test_a_strip_of_noise_has_no_writing_rather_than_a_flat_colour(tmp_path):
    strip = tmp_path / "strip.png"
    Image.fromarray((np.random.default_rng(0).random((1, 2_000_000)) * 255).astype(np.uint8)).save(strip)
    with pytest.raises(DataError, match="no writing to read: its 2000000x1 pixels vary only in detail finer"):
        load_image(strip, ImageConfig())
    flat = tmp_path / "flat.png"
    Image.new("L", (64, 32), 128).save(flat)
    with pytest.raises(DataError, match="a single flat colour"):
        load_image(flat, ImageConfig())
