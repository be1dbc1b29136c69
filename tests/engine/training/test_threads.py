"""Thread sizing (issue 15, finding 1): a live query runs on one intra-op thread, so a busy core held by
another process cannot stall it at a barrier; big batches and training use the cores. What ran is
observed inside the model (a forward hook), not taken from the policy."""
import threading

import torch

from engine.data.sources import load_source
from engine.paths import DEFAULT_CHECKPOINT
from engine.retrieval import Retriever
from engine.threads import usable_cores, work_threads


def threads_seen_by(module: torch.nn.Module) -> list[int]:
    seen: list[int] = []
    module.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    return seen


def test_a_query_runs_on_one_thread_and_a_gallery_on_the_cores():
    retriever = Retriever.from_checkpoint(DEFAULT_CHECKPOINT, "cpu")
    seen = threads_seen_by(retriever.model.encoders["text"])
    retriever.build_gallery(load_source("builtin").splits["test"][::10])
    gallery_threads = list(seen)
    before = torch.get_num_threads()
    result = retriever.query("text", "forty two")
    assert seen[len(gallery_threads):] == [1] and result.threads == 1
    assert set(gallery_threads) == {work_threads()} == {usable_cores()}
    assert torch.get_num_threads() == before  # the caller's own count is left alone


def test_training_runs_on_the_cores_left_after_the_studio_reserves_one(small_cfg, small_data, tmp_path):
    from engine.threads import reserve_cores
    from engine.training.trainer import Trainer
    trainer = Trainer(small_cfg, small_data, tmp_path, "cpu", 2, tensorboard=False)
    seen = threads_seen_by(trainer.model.encoders["image"])
    ended = []
    reserve_cores(1)
    try:
        # beside the worker processes preparing its batches, if this machine gives them any
        expected = max(1, usable_cores() - 1 - trainer.workers())
        done = threading.Thread(target=lambda: ended.append(trainer.run()), name="nlmm-test-trainer")  # as the studio runs it
        done.start()
        done.join(120)
    finally:
        reserve_cores(0)
    assert not done.is_alive(), "the run did not end within 120 s"
    assert [e.kind for e in ended] == ["finished"] and ended[0].step == 2
    assert seen and set(seen) == {expected}
