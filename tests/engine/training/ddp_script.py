"""Run by test_ddp.py under torchrun: train a few steps with DDP, then dump this rank's weights."""
import json
import sys
from pathlib import Path

import torch

from tests.small_model import small_config
from engine.data.dataset import DataSplits
from engine.data.sources import load_source
from engine.training.distributed import init_distributed, shutdown_distributed
from engine.training.trainer import Trainer

out = Path(sys.argv[1])
info = init_distributed()
cfg = small_config(slow_chunk=2)
cfg.train.checkpoint_every = 2
data = load_source("builtin")
subset = DataSplits("subset", {"train": data.splits["train"][::40], "val": [], "test": []})
trainer = Trainer(cfg, subset, out / "run", "cpu", 4, dist_info=info, tensorboard=False)
initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
saved = []
trainer.subscribe(lambda e: saved.append(e.step) if e.kind == "checkpoint" else None)
final = trainer.run()
torch.save({k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, out / f"rank{info.rank}.pt")
(out / f"rank{info.rank}.json").write_text(json.dumps({"final": final.kind, "checkpoints": saved,
                                                        "world": info.world_size,
                                                        "learned": any(not torch.equal(initial[k], v)
                                                                       for k, v in trainer.model.state_dict().items())}))
shutdown_distributed()
