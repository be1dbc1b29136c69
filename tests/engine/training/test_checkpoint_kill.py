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


def test_a_training_run_killed_again_and_again_always_resumes(tmp_path):
    """kill -9 at random points of `nlmm train` (a checkpoint every step, so some kills land in a write),
    each time resumed with --resume: the run always goes on, finishes, and leaves no temp file."""
    import random
    config = tmp_path / "kill.yaml"
    config.write_text("data: {batch_size: 4}\ntrain: {steps: 20, checkpoint_every: 1, eval_every: 1000}\n")
    out = tmp_path / "run"
    metrics = out / "metrics.jsonl"
    rng = random.Random(15)

    def train() -> subprocess.Popen:
        resume = ["--resume"] if (out / "checkpoint.pt").exists() else []
        return subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "--config", str(config),
                                 "--out", str(out), *resume], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    for _ in range(3):
        lines = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        proc = train()
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and \
                (not metrics.exists() or len(metrics.read_text().splitlines()) <= lines):
            time.sleep(0.05)  # until this run has made a step
        time.sleep(rng.uniform(0.0, 1.0))
        proc.kill()
        assert proc.wait(timeout=30) in (-signal.SIGKILL, 0), proc.stderr.read()
    final = train()
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0 and "finished: finished at step 20" in err, err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 20
    assert [p.name for p in out.glob(".*.tmp")] == []
