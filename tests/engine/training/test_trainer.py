"""The trainer: it learns, resumes exactly, keeps checkpoints safe, stops on NaN, obeys control."""
import json
import threading

import pytest
import torch

from engine.training.checkpoint import CheckpointError, load_checkpoint, load_model
from engine.training.trainer import Trainer


def run(cfg, data, out, steps, resume=False, events=None, memory_frames=False):
    trainer = Trainer(cfg, data, out, "cpu", steps, resume=resume, tensorboard=False)
    if events is not None:
        trainer.subscribe(events.append, memory_frames=memory_frames)
    return trainer, trainer.run()


def losses(events):
    return {e.step: e.loss for e in events if e.kind == "step"}


def test_loss_decreases_on_a_tiny_run(small_cfg, small_data, tmp_path):
    events = []
    _, final = run(small_cfg, small_data, tmp_path, 30, events=events, memory_frames=True)
    assert final.kind == "finished" and final.step == 30
    curve = list(losses(events).values())
    assert sum(curve[-5:]) / 5 < 0.8 * sum(curve[:5]) / 5
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if line["kind"] == "step"] == list(range(1, 31))
    stepped = {e.step: e.stepped_levels for e in events if e.kind == "step"}
    assert stepped[3] == ("fast", "slow") and stepped[4] == ("fast",)
    frames = [e for e in events if e.kind == "memory"]
    assert [f.step for f in frames] == list(range(1, 31)) and frames[0].slots.shape == (8, 32)
    assert frames[-1].change.sum() > frames[0].change.sum() > 0, "the change is measured from the run's start"


def test_memory_frames_are_taken_only_for_a_listener_that_asked(small_cfg, small_data, tmp_path, monkeypatch):
    from engine.layers.memory import CentralMemory
    taken = []
    original = CentralMemory.snapshot
    monkeypatch.setattr(CentralMemory, "snapshot", lambda self, *a, **k: taken.append(1) or original(self, *a, **k))
    events = []
    run(small_cfg, small_data, tmp_path, 4, events=events)     # as the CLI listens
    assert not taken and not [e for e in events if e.kind == "memory"]


def test_the_run_log_is_one_open_file_that_readers_see_grow_step_by_step(small_cfg, small_data, tmp_path):
    """The log is held open once for the whole run (not reopened per event), and each line is on disk as
    soon as it is written: `nlmm runs` and the studio's run history read a run while it goes."""
    import os
    from pathlib import Path
    log = (tmp_path / "metrics.jsonl").resolve()

    def handles() -> int:     # this process' open descriptors on the log
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(log))

    seen = []

    def at_step(event) -> None:
        if event.kind == "step":   # listeners hear a step after its line is on disk
            logged = [json.loads(line) for line in log.read_text().splitlines()]
            seen.append((event.step, max(e["step"] for e in logged if e["kind"] == "step"), handles()))

    small_cfg.train.eval_every = small_cfg.train.checkpoint_every = 2
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 6, tensorboard=False)
    trainer.subscribe(at_step)
    assert trainer.run().kind == "finished"
    assert [(step, last) for step, last, _ in seen] == [(n, n) for n in range(1, 7)]
    assert {open_now for _, _, open_now in seen} == {1}
    assert handles() == 0                                   # closed when the run ended
    kinds = [json.loads(line)["kind"] for line in log.read_text().splitlines()]
    assert kinds.count("step") == 6 and kinds.count("eval") == 3 and kinds[-1] == "finished"


def test_resume_equals_an_uninterrupted_run(small_cfg, small_data, tmp_path):
    full = []
    run(small_cfg, small_data, tmp_path / "full", 12, events=full)
    first, second = [], []
    trainer = Trainer(small_cfg, small_data, tmp_path / "split", "cpu", 12, tensorboard=False)
    trainer.subscribe(first.append)
    trainer.subscribe(lambda e: trainer.stop() if e.kind == "step" and e.step == 7 else None)
    assert trainer.run().kind == "stopped"
    _, final = run(small_cfg, small_data, tmp_path / "split", 12, resume=True, events=second)
    assert final.kind == "finished"
    resumed = {**losses(first), **losses(second)}
    assert sorted(losses(second)) == list(range(8, 13))
    for step, loss in losses(full).items():
        assert resumed[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), f"step {step}"


def test_worker_processes_give_the_batches_and_augmentation_of_a_run_without_them(small_cfg, small_data, tmp_path):
    """One loader spans every epoch (its workers start once a run); each item still gets its epoch's
    augmentation, so worker processes read the same batches as the trainer's own thread, epoch after epoch
    (within float rounding: a worker computes on one thread)."""
    small_cfg.data.augment = True

    def batches(workers: int, count: int = 25):
        small_cfg.data.num_workers = workers
        trainer = Trainer(small_cfg, small_data, tmp_path / str(workers), "cpu", count, tensorboard=False)
        stream = trainer._batches()
        out = [next(stream) for _ in range(count)]
        stream.close()
        return trainer, out
    trainer, in_process = batches(0)
    assert 25 > 2 * trainer.sampler.batches_per_epoch(), "the batches should span several epochs"
    _, with_workers = batches(2)
    for n, (a, b) in enumerate(zip(in_process, with_workers)):
        assert torch.equal(a["items"], b["items"]), f"batch {n + 1}"
        for key in ("image", "audio", "text"):
            # a log-mel rounds differently on one thread: near-silent bins move by up to ~0.006 of a spread
            difference = (a[key].float() - b[key].float()).abs()
            assert difference.mean() < 1e-4 and difference.max() < 0.05, f"batch {n + 1}: {key}"


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(small_cfg, small_data, tmp_path):
    small_cfg.train.checkpoint_every = 2
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 10, tensorboard=False)
    events = []
    trainer.subscribe(events.append)
    original_loss = trainer.step_fn.loss.forward

    def nan_after_four(embeddings, labels=None, index=None):
        total, pairs = original_loss(embeddings, labels, index)
        return (total * float("nan"), pairs) if trainer.step >= 4 else (total, pairs)

    trainer.step_fn.loss.forward = nan_after_four
    final = trainer.run()
    assert final.kind == "failed" and "at step 5" in final.message
    assert "the last good checkpoint is kept" in final.message
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 4
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())
    assert any(e.kind == "failed" for e in events)


def test_a_nan_before_any_checkpoint_says_none_was_written(small_cfg, small_data, tmp_path):
    """It spoke of "the last good checkpoint" when there was none."""
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 10, tensorboard=False)
    original_loss = trainer.step_fn.loss.forward
    trainer.step_fn.loss.forward = lambda *args: (lambda total, pairs: (total * float("nan"), pairs))(
        *original_loss(*args))
    final = trainer.run()
    assert final.kind == "failed" and "at step 1" in final.message, final.message
    assert "no checkpoint was written yet" in final.message and not (tmp_path / "checkpoint.pt").exists()


def test_pause_resume_and_stop_from_another_thread(small_cfg, small_data, tmp_path):
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 10_000, tensorboard=False)
    seen, paused_at = [], {}

    def listener(event):
        seen.append(event.kind)
        if event.kind == "step" and event.step == 3:
            threading.Thread(target=trainer.pause).start()
        if event.kind == "paused":
            paused_at["step"] = event.step
            threading.Thread(target=trainer.resume).start()
        if event.kind == "step" and event.step == 8:
            threading.Thread(target=trainer.stop).start()

    trainer.subscribe(listener)
    final = trainer.run()
    assert final.kind == "stopped" and 8 <= final.step <= 9  # answered within one step
    assert 3 <= paused_at["step"] <= 4 and "resumed" in seen
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == final.step  # stop saves


def test_corrupt_or_foreign_checkpoint_is_one_line(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as info:
        load_checkpoint(junk)
    assert "\n" not in str(info.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not an NLMM checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_holds_everything_to_use_the_model(small_cfg, small_data, tmp_path):
    run(small_cfg, small_data, tmp_path, 3)
    model, cfg, tokenizer, payload = load_model(tmp_path / "checkpoint.pt")
    assert cfg == small_cfg and "forty" in tokenizer.index and payload["step"] == 3
    assert {"train_state", "rng", "config", "tokenizer"} <= set(payload)


def test_cli_train_stops_and_saves_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "--steps", "100000", "--batch-size", "4",
                             "--out", str(tmp_path)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)  # wait for the first step
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped: stopped at step" in err
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] >= 1
    assert oct((tmp_path / "checkpoint.pt").stat().st_mode & 0o777) != "0o600"



def test_cli_sigterm_during_the_final_evaluation_skips_it_and_keeps_the_checkpoint(tmp_path):
    """SIGTERM was only a request to stop training, so the evaluation after the last step ran on for
    minutes; now it skips that evaluation (the checkpoint is already saved) and exits cleanly."""
    import signal
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "--steps", "1", "--batch-size", "4",
                             "--out", str(tmp_path)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("evaluating on"):
            proc.send_signal(signal.SIGTERM)
            break
    out, rest = proc.communicate(timeout=120)
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert "final evaluation skipped; checkpoint kept" in err
    assert "R@1" not in out + err
    # proportionate: a one-step run is measured on an even spread of 200 held-out items, not all of them
    assert "evaluating on 200 held-out items of 800 (a short run; `nlmm eval` measures them all)" in err
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1


# ---------------------------------------------------------------- hostile runs (issue 15)

def _mixed_data(small_data):
    """Two image+text+audio items among image-only and text-only ones: with 4 per batch, some batches
    have no two items sharing two modalities."""
    from engine.data.dataset import DataSplits, Item
    train = small_data.splits["train"]
    items = [train[0], train[1]]
    items += [Item(image=i.image, label=i.label, key=i.key) for i in train[2:8]]
    items += [Item(text=i.text, label=i.label, key=i.key) for i in train[8:14]]
    return DataSplits("mixed", {"train": items, "val": small_data.splits["val"]})


def test_a_batch_without_a_shared_pair_is_skipped_and_the_run_goes_on_and_resumes(small_cfg, small_data, tmp_path):
    """Such a batch raised and the run died without saving (and --resume died at the same step)."""
    small_cfg.data.batch_size = 4
    small_cfg.train.checkpoint_every = 3
    data = _mixed_data(small_data)
    events = []
    trainer = Trainer(small_cfg, data, tmp_path, "cpu", 6, tensorboard=False)
    trainer.subscribe(events.append)
    trainer.subscribe(lambda e: trainer.stop() if e.kind == "checkpoint" else None)
    assert trainer.run().kind == "stopped"
    _, final = run(small_cfg, data, tmp_path, 12, resume=True, events=events)
    assert final.kind == "finished" and final.step == 12
    skipped = [e.message for e in events if e.kind == "warning" and "batch skipped" in e.message]
    trained = [e.step for e in events if e.kind == "step"]
    assert skipped and trained and len(set(trained)) + len(skipped) == 12
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 12


def test_a_text_only_folder_is_refused_before_training_with_the_reason(small_cfg, small_data, tmp_path):
    """A folder of captions alone trained until step 1, then died in the loss."""
    from engine.data.errors import DataError
    (tmp_path / "items.csv").write_text("text,label,split\n" + "".join(
        f"{item.text},{item.label},train\n" for item in small_data.splits["train"]))
    with pytest.raises(DataError, match=r"nothing to learn from: .* 0 of the \d+ train items have two "
                                        r"\(modalities present: text\)"):
        Trainer(small_cfg, f"folder:{tmp_path}", tmp_path / "run", "cpu", 3, tensorboard=False)


def test_weights_that_become_infinite_are_never_written_as_the_last_good_checkpoint(small_cfg, small_data, tmp_path):
    """With `lr: inf` the first step made every weight NaN, and the checkpoint due at that step was written
    as "last good". Here a weight overflows in step 4 (the optimiser's update, simulated), a checkpoint
    being due at steps 2 and 4."""
    small_cfg.train.checkpoint_every = 2
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 6, tensorboard=False)

    def overflow_at_four(event):
        if event.kind == "step" and event.step == 4:
            with torch.no_grad():
                trainer.model.heads["text"].weight[0, 0] = float("inf")
    trainer.subscribe(overflow_at_four)
    final = trainer.run()
    assert final.kind == "failed"
    assert "the weights became NaN or infinite by step 4 (heads.text.weight)" in final.message
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 2 and all(torch.isfinite(v).all() for v in payload["model"].values()
                                        if v.is_floating_point())


def test_two_runs_into_one_folder_the_second_is_refused(small_cfg, small_data, tmp_path):
    """Both used to "finish", interleaving their lines in one metrics.jsonl."""
    from engine.training.run_folder import RunFolderError
    first = Trainer(small_cfg, small_data, tmp_path, "cpu", 10_000, tensorboard=False)
    running = threading.Event()
    first.subscribe(lambda e: running.set() if e.kind == "step" else None)
    thread = threading.Thread(target=first.run, name="nlmm-test-first-run")
    thread.start()
    try:
        assert running.wait(120)
        with pytest.raises(RunFolderError, match="another training run is writing into this folder"):
            Trainer(small_cfg, small_data, tmp_path, "cpu", 5, tensorboard=False)
    finally:
        first.stop()
        thread.join(120)
    Trainer(small_cfg, small_data, tmp_path, "cpu", first.step + 1, resume=True, tensorboard=False).run()


def test_steps_below_one_are_refused(small_cfg, small_data, tmp_path):
    for steps in (0, -5):
        with pytest.raises(ValueError, match=f"steps must be at least 1, got {steps}"):
            Trainer(small_cfg, small_data, tmp_path, "cpu", steps, tensorboard=False)


def test_temp_files_of_killed_checkpoint_writes_are_swept_when_a_run_starts(small_cfg, small_data, tmp_path):
    run(small_cfg, small_data, tmp_path, 2)
    stale = [tmp_path / ".checkpoint.pt.k1ll3d.tmp", tmp_path / ".config.yaml.x9.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    events = []
    run(small_cfg, small_data, tmp_path, 3, resume=True, events=events)
    assert not any(path.exists() for path in stale)
    assert any(e.kind == "warning" and ".checkpoint.pt.k1ll3d.tmp" in e.message for e in events)


def test_resuming_from_a_slimmed_checkpoint_is_a_clear_error(small_cfg, small_data, tmp_path):
    from engine.training.checkpoint import slim_checkpoint
    run(small_cfg, small_data, tmp_path / "full", 2)
    slim_checkpoint(tmp_path / "full" / "checkpoint.pt", tmp_path / "slim" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot resume from it: it holds no 'train_state' "
                                              r"\(a checkpoint slimmed for using the model"):
        Trainer(small_cfg, small_data, tmp_path / "slim", "cpu", 4, resume=True, tensorboard=False)


def test_a_run_is_never_overwritten_by_a_new_one_into_its_folder(small_cfg, small_data, tmp_path):
    """`--out runs/same` again without --resume: the step-2 checkpoint and its log stay as they were."""
    from engine.training.run_folder import RunFolderError
    run(small_cfg, small_data, tmp_path, 2)
    kept = {name: (tmp_path / name).read_bytes() for name in ("checkpoint.pt", "metrics.jsonl", "config.yaml")}
    with pytest.raises(RunFolderError, match="already holds a training run; continue it with --resume"):
        Trainer(small_cfg, small_data, tmp_path, "cpu", 3, tensorboard=False)
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept
    run(small_cfg, small_data, tmp_path, 3, resume=True)      # asked: it goes on
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3


def test_a_refused_run_leaves_no_folder_and_a_log_without_checkpoint_says_why_it_cannot_resume(
        small_cfg, small_data, tmp_path):
    from engine.training.run_folder import RunFolderError
    out = tmp_path / "new"
    with pytest.raises(ValueError, match="not both"):
        Trainer(small_cfg, small_data, out, "cpu", 3, resume=True, init="x.pt", tensorboard=False)
    assert not out.exists()
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"kind": "step", "step": 1}\n')
    with pytest.raises(RunFolderError, match="stopped before its first checkpoint, so there is nothing to resume"):
        Trainer(small_cfg, small_data, out, "cpu", 3, resume=True, tensorboard=False)


def test_a_fresh_run_where_one_stopped_before_its_checkpoint_keeps_the_old_metrics_apart(
        small_cfg, small_data, tmp_path):
    """Runs that stopped at step 18 before a checkpoint, then `--out` again without --resume: the new
    metrics.jsonl holds the new run's steps only (not steps 1-18 then 1-2) and the old lines are kept."""
    from engine.training.runs import read_run
    old = "".join(f'{{"kind": "step", "step": {n}, "loss": 9.0}}\n' for n in range(1, 19))
    (tmp_path / "metrics.jsonl").write_text(old)
    (tmp_path / "metrics.earlier-1.jsonl").write_text("a still older one\n")
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 2, tensorboard=False)
    warnings = []
    trainer.subscribe(lambda event: warnings.append(event.message) if event.kind == "warning" else None)
    ended = trainer.run()
    assert ended.kind == "finished"
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if e["kind"] == "step"] == [1, 2]
    assert [s.step for s in read_run(tmp_path).steps] == [1, 2]
    assert (tmp_path / "metrics.earlier-2.jsonl").read_text() == old
    assert (tmp_path / "metrics.earlier-1.jsonl").read_text() == "a still older one\n"
    assert any("kept as metrics.earlier-2.jsonl" in w for w in warnings)


def test_only_the_runs_own_temp_files_are_swept(small_cfg, small_data, tmp_path):
    """A killed checkpoint write's temp file goes; a user's `.mynotes.tmp` in the folder stays."""
    run(small_cfg, small_data, tmp_path, 2)
    mine = tmp_path / ".mynotes.tmp"
    mine.write_text("my notes")
    (tmp_path / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half")
    run(small_cfg, small_data, tmp_path, 3, resume=True)
    assert mine.read_text() == "my notes" and not (tmp_path / ".checkpoint.pt.k1ll3d.tmp").exists()


@pytest.mark.parametrize("change", [{"d_model": 1_000_000}, {"L_mem": 100_000_000},
                                    {"image.height": 100_000, "data.batch_size": 256}])
def test_a_model_too_big_for_the_machine_is_refused_with_its_estimate(small_cfg, small_data, tmp_path, change):
    """Sizes that pass validation failed inside an allocation (a traceback, or 4.5 GB and the OS's kill)."""
    from engine.config import ConfigError
    for key, value in change.items():
        owner = small_cfg
        *path, name = key.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, value)
    with pytest.raises(ConfigError, match=r"this model does not fit: [\d,]+ parameters, about [\d.]+ GiB to train"):
        Trainer(small_cfg, small_data, tmp_path / "run", "cpu", 2, tensorboard=False)
    assert not (tmp_path / "run").exists()
