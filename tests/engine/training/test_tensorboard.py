"""TensorBoard events written beside metrics.jsonl, read back with TensorBoard's own reader."""
import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from engine.training.trainer import Trainer


def _scalars(folder):
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_run_writes_its_curves_for_tensorboard(small_cfg, small_data, tmp_path):
    small_cfg.train.eval_every = 2
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 4, tensorboard=True)
    assert trainer.run().kind == "finished"
    scalars = _scalars(tmp_path / "tensorboard")
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in logged if e["kind"] == "step"]
    assert [s for s, _ in scalars["loss/total"]] == [1, 2, 3, 4]
    for (_, value), line in zip(scalars["loss/total"], steps):
        assert abs(value - line["loss"]) < 1e-5
    assert {f"lr/{level.name}" for level in small_cfg.cms_levels} <= set(scalars)
    evaluations = [e for e in logged if e["kind"] == "eval"]
    split = evaluations[0]["split"]       # named by what it measured (a source without val: test)
    assert split == trainer.eval_split
    assert [s for s, _ in scalars[f"recall@1/{split}/image->text"]] == [2, 4]
    assert abs(scalars[f"recall@1/{split}/image->text"][-1][1] - evaluations[-1]["recall"]["image->text"]["R@1"]) < 1e-6


def test_without_asking_a_run_writes_no_events(small_cfg, small_data, tmp_path):
    assert Trainer(small_cfg, small_data, tmp_path, "cpu", 2).run().kind == "finished"
    assert not (tmp_path / "tensorboard").exists()
