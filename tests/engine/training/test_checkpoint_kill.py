"""A process killed in the middle of writing a checkpoint leaves the previous one loadable."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from engine.training.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[3]

WRITER = """
import sys, torch
from engine.training.checkpoint import save_checkpoint
path = sys.argv[1]
big = {"config": {}, "tokenizer": {"vocabulary": ["<pad>", "<unk>"]}}
i = 0
while True:  # rewrite a ~40 MB checkpoint forever, until killed
    i += 1
    save_checkpoint(path, {**big, "model": {"w": torch.full((10_000_000,), float(i))}, "step": i})
    print(i, flush=True)
"""


def test_kill_during_checkpoint_write_leaves_the_old_one_loadable(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"config": {}, "model": {"w": torch.zeros(3)}, "tokenizer": {}, "step": 0})
    for delay in (0.05, 0.3, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = proc.stdout.readline()      # the first write is complete: the writer is now mid-loop
        assert first.strip() == "1", proc.stderr.read() if not first else first
        time.sleep(delay)                   # then die somewhere inside a later write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        payload = load_checkpoint(path)  # never a half-written file
        w = payload["model"]["w"]
        assert torch.all(w == w[0]) and int(w[0]) == payload["step"] >= 1, "the writer's last whole checkpoint"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.pt"]
    for name in leftovers:  # an interrupted temp file may remain, but never under the real name
        assert name.startswith(".checkpoint.pt.") and name.endswith(".tmp")
