"""A run's events as TensorBoard scalars, beside its metrics.jsonl: `tensorboard --logdir runs` shows every
run the CLI (`nlmm train --tensorboard`) or the studio trained, each in `<run folder>/tensorboard/`.

Tags: loss/total and loss/<pair> per step, lr/<group> (the outer optimiser and each CMS level), grad_norm,
and recall@1|5|10/<split>/<direction> per evaluation, named by the split it measured.
"""
from __future__ import annotations

from pathlib import Path

from engine.events import Evaluation, StepMetrics

FOLDER = "tensorboard"   # inside the run folder


class TensorBoardLog:
    def __init__(self, run_folder: str | Path):
        from torch.utils.tensorboard import SummaryWriter   # imports tensorboard: only for runs that log to it
        self._writer = SummaryWriter(str(Path(run_folder) / FOLDER))

    def write(self, event) -> None:
        if isinstance(event, StepMetrics):
            self._writer.add_scalar("loss/total", event.loss, event.step)
            for pair, value in event.pair_losses.items():
                self._writer.add_scalar(f"loss/{pair}", value, event.step)
            for group, lr in event.lrs.items():
                self._writer.add_scalar(f"lr/{group}", lr, event.step)
            self._writer.add_scalar("grad_norm", event.grad_norm, event.step)
        elif isinstance(event, Evaluation):
            for direction, values in event.recall.items():
                for k, value in values.items():          # "R@1" -> recall@1
                    self._writer.add_scalar(f"recall@{k.removeprefix('R@')}/{event.split}/{direction}", value,
                                            event.step)

    def close(self) -> None:
        self._writer.close()
