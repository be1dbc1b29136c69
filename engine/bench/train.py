"""`nlmm bench train`: wall time from scratch until test recall@1 reaches the targets on this machine.

The clock counts training only: it stops while the test split is evaluated (every `eval_every` steps).
"""
from __future__ import annotations

import tempfile
import time

from engine.bench.machine import describe, machine_line
from engine.bench.result import BenchResult, Target
from engine.config import NLMMConfig
from engine.data.sources import load_source
from engine.training.trainer import Trainer

# On the test split's voices and handwriting, which training never sees, with every item augmented:
# the `tiny` recipe first passed both at step 1000 (710 s) on the CI machine (docs/benchmarks.md).
TARGETS = {"image->text": 0.80, "audio->image": 0.80}
BUDGET_S = 900.0
NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)


def add_arguments(parser) -> None:
    parser.add_argument("--config", default="tiny", help="config file or preset name (default: tiny)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds of training at most (default {BUDGET_S:.0f})")


def run(cfg: NLMMConfig, device: str | None = None, budget_s: float = BUDGET_S, eval_every: int = 50,
        progress=print) -> BenchResult:
    cfg.train.eval_every = 10**9  # the benchmark evaluates on the test split itself
    cfg.train.checkpoint_every = 10**9
    data = load_source("builtin")
    test_items = data.splits["test"]
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, data, out, device, tensorboard=False)
        state = {"train_s": 0.0, "since": time.perf_counter(), "reached": None, "recall": {}}

        def on_event(event) -> None:
            if event.kind != "step":
                return
            now = time.perf_counter()
            state["train_s"] += now - state["since"]
            step = event.step
            if step % eval_every == 0 or state["train_s"] >= budget_s:
                recall = trainer.evaluate(test_items)
                state["recall"] = {d: v["R@1"] for d, v in recall.items()}
                shown = ", ".join(f"{d} {state['recall'][d]:.3f}" for d in TARGETS)
                progress(f"step {step}, {state['train_s']:.0f} s of training: R@1 {shown}")
                if state["reached"] is None and all(state["recall"][d] >= t for d, t in TARGETS.items()):
                    state["reached"] = (state["train_s"], step)
                    trainer.stop()
            if state["train_s"] >= budget_s:
                trainer.stop()
            state["since"] = time.perf_counter()

        trainer.subscribe(on_event)
        trainer.run()
    reached = state["reached"]
    figures = {"seconds_to_target": reached[0] if reached else None, "steps_to_target": reached[1] if reached else None,
               "recall_at_end": state["recall"], "budget_s": budget_s, "device": str(trainer.device),
               "batch_size": cfg.data.batch_size}
    targets = {f"{d} R@1 at the end": Target(limit, state["recall"].get(d)) for d, limit in TARGETS.items()}
    targets["seconds of training to reach them"] = Target(budget_s, reached[0] if reached else None, at_most=True)
    ran = describe(trainer.device, cfg.precision)
    return BenchResult(NAME, figures, targets, ran)


def from_args(args, progress) -> BenchResult:
    from engine.config import load_config
    return run(load_config(args.config), args.device, budget_s=args.budget, progress=progress)


def format_table(result: BenchResult) -> str:
    reached = result["seconds_to_target"]
    return "\n".join([f"Machine: {machine_line(result.ran)}",
                      (f"reached after {reached:.0f} s of training" if reached is not None
                       else f"not reached in {result['budget_s']:.0f} s"), "targets:", result.targets_table()])
