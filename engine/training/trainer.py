"""The trainer: a plain readable loop over batches that emits events and obeys pause / resume / stop.

Events are the frozen dataclasses of `engine.events`, handed to every subscriber (the CLI prints them,
the studio plots them) and written to the run log (`engine.training.runs`): StepMetrics every step,
Evaluation, CheckpointSaved, DataWarning (a bad file, once per file), PauseChanged, and RunEnded
(finished / stopped / failed), which `run()` also returns. A MemoryFrame of the central memory follows
each step only when a subscriber asked for them: taking one copies the slots off the device, a sync per
step that the headless CLI has no use for. Control (`pause`, `resume`, `stop`) may come from any thread
and is answered within one step. A batch with nothing to learn (no two items sharing two modalities) is
used up and skipped with a DataWarning.

The run folder is locked while the run writes into it (engine.training.run_folder).
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from engine.config import AUTO_WORKERS, NLMMConfig, save_config
from engine.data.audio_augment import SpeechAugment
from engine.data.builtin import BUILTIN_ROOT
from engine.data.dataset import Collate, DataSplits, MultimodalDataset
from engine.data.errors import DataError
from engine.data.mix import MixedBatchSampler, MixedDataset, teach_splits
from engine.data.sources import load_source
from engine.data.text import Tokenizer
from engine.device import pick_device
from engine.events import CheckpointSaved, DataWarning, Evaluation, MemoryFrame, PauseChanged, RunEnded, StepMetrics
from engine.models.footprint import check_fits
from engine.models.nlmm import NLMM
from engine.threads import data_workers, intra_op_threads, step_threads, work_threads
from engine.training.checkpoint import (CheckpointError, checkpoint_config, load_checkpoint, model_payload,
                                        non_finite, save_checkpoint, upgrade)
from engine.training.distributed import DistInfo
from engine.training.evaluate import evaluate
from engine.training.init import start_from
from engine.training.run_folder import RunFolder, RunFolderError, check_usable, new_run_name
from engine.training.tensorboard_log import TensorBoardLog
from engine.training.runs import CHECKPOINT, CONFIG, METRICS, RunLog
from engine.training.step import TrainStep, batch_labels, shares_a_pair
from engine.vocabulary import MODALITIES

CACHE_LIMIT = 5000  # data sets up to this many items keep their prepared tensors in memory


class ResumableBatchSampler(Sampler):
    """Epoch e visits a permutation drawn from (seed, e); a resumed run starts mid-epoch exactly where
    the checkpoint left off without touching the skipped items. Under DDP each rank takes its slice
    of every global batch."""

    def __init__(self, n_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def batches_per_epoch(self) -> int:
        return max(1, self.n // self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start_batch

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + self.epoch))
        if self.n < self.batch_size:  # a tiny data set: one (smaller) batch per epoch
            order = order.tolist()
            yield order[self.rank::self.world_size]
            return
        for b in range(self.start_batch, self.batches_per_epoch()):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size].tolist()
            yield batch[self.rank::self.world_size]

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the batch that global step `step` (1-based) consumes."""
        return divmod(step - 1, self.batches_per_epoch())


class EpochItems(Dataset):
    """A data set's items addressed as (epoch, index), so that one loader can span every epoch of a run and
    still give each item its epoch's augmentation (the items draw it from (seed, epoch, index)): its worker
    processes then start once a run, not once an epoch."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        self.dataset.epoch = epoch
        return self.dataset[index]


class EpochSpanning(Sampler):
    """A resumable batch sampler's batches, epoch after epoch without end, from the batch that global step
    `step` (1-based) consumes, as (epoch, index) keys of `EpochItems`."""

    def __init__(self, sampler, step: int):
        self.sampler, self.step = sampler, step

    def __iter__(self):
        epoch, start = self.sampler.position(self.step)
        while True:
            self.sampler.epoch, self.sampler.start_batch = epoch, start
            for batch in self.sampler:
                yield [(epoch, index) for index in batch]
            epoch, start = epoch + 1, 0


def lr_scale(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the base rate."""
    if warmup > 0 and step <= warmup:
        return step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def check_trainable(data: DataSplits, allow_missing=()) -> None:
    """A DataError unless the train split can teach something: a modality the source should have but
    lacks entirely needs the user's consent (`allow_missing`), and contrastive learning needs at least two
    items that each carry two modalities."""
    for modality in data.missing:
        if modality not in allow_missing:
            raise DataError(f"{data.missing_message(modality)}; to train without it anyway, "
                            f"pass --allow-missing {modality}")
    train = data.splits.get("train", [])
    paired = sum(len(item.modalities()) >= 2 for item in train)
    if paired < 2:
        have = sorted({m for item in train for m in item.modalities()}, key=MODALITIES.index)
        raise DataError(f"{data.source}: nothing to learn from: training pairs two modalities of one item, and "
                        f"{paired} of the {len(train)} train items have two (modalities present: "
                        f"{', '.join(have) or 'none'})")


def brought_files(items) -> set[str]:
    """The modalities a user's own items hold files of: what a fine-tune on them teaches (their captions
    teach text only through new words)."""
    return {m for m in ("image", "audio") if any(getattr(item, m) is not None for item in items)}


class Trainer:
    def __init__(self, cfg: NLMMConfig, data: str | DataSplits = "builtin", out_dir: str | Path | None = None,
                 device: str | None = None, steps: int | None = None, resume: bool = False,
                 dist_info: DistInfo | None = None, tensorboard: bool = False, allow_missing=(),
                 init: str | Path | None = None):
        """`init`: a trained checkpoint to fine-tune (`nlmm train --init`): its weights, tokenizer and domain
        statistics, a fresh optimiser; `cfg` then gives the training settings and must describe the
        checkpoint's model. The user's items are mixed with `cfg.data.mix_builtin` of built-in ones.

        Set up in the order a recipe reads (torchtune's shape): the run folder and what it resumes, the
        data, the model and its step, the batches."""
        if steps is not None and steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if resume and init is not None:
            raise ValueError("a run either resumes (its own checkpoint) or starts from another (init), not both")
        self.dist = dist_info or DistInfo()
        self.device = pick_device(device) if not (self.dist.enabled and torch.cuda.is_available()) \
            else torch.device("cuda", self.dist.local_rank)
        self.out_dir = Path(out_dir) if out_dir else Path("runs") / new_run_name(cfg.name)
        self.listeners: list[Callable[[object], None]] = []
        self.memory_listeners: list[Callable[[MemoryFrame], None]] = []
        self._pause, self._stop = threading.Event(), threading.Event()
        self.state = "idle"
        self._warned: set[str] = set()
        self.step = 0
        self.last_recall: dict = {}
        self.last_recall_step = 0   # the step last_recall was measured at
        self._memory_at_start: torch.Tensor | None = None

        resume_payload = self._setup_run_folder(resume)
        if resume_payload:
            cfg = checkpoint_config(resume_payload, self.out_dir / CHECKPOINT)
        # A fine-tune, started now or resumed: its checkpoints name where it started from, and the config the
        # model was first trained with (a fine-tune of a fine-tune scales those rates, not its parent's).
        self.init = str(init) if init is not None else (resume_payload or {}).get("init")
        self.trained_config = (resume_payload or {}).get("trained_config")
        builtin, brought = self._setup_data(data, allow_missing)
        start, self.new_words = None, []
        if init is not None:
            start = start_from(init, self.data.captions("train"), cfg)
            cfg, self.new_words, self.trained_config = start.cfg, start.new_words, start.trained_config
            if not cfg.train.learn_only:   # recorded in the run's config, so a resumed run freezes the same
                cfg.train.learn_only = [m for m in MODALITIES if m in brought or (m == "text" and self.new_words)]
        self.cfg = cfg
        self.total_steps = steps if steps is not None else cfg.train.steps
        self.tokenizer = (Tokenizer.from_state_dict(resume_payload["tokenizer"]) if resume_payload
                          else start.tokenizer if start is not None
                          else Tokenizer.build(self.data.captions("train"), cfg.text.vocab_size))
        self._setup_model(start)
        if resume_payload:
            self._restore(resume_payload)
        self._setup_batches(builtin)
        self.log = RunLog(self.out_dir) if self.dist.is_main else None
        self.tensorboard = tensorboard and self.dist.is_main   # the events opened when the run starts
        self._tb = None

    def _setup_run_folder(self, resume: bool) -> dict | None:
        """The run folder checked (a run there is continued with `resume`, never overwritten); returns the
        checkpoint a resumed run goes on from."""
        if self.dist.is_main:
            check_usable(self.out_dir, holds_a_run=not resume and (self.out_dir / CHECKPOINT).exists())
        self._starts_afresh = not resume   # the folder's metrics, from a run stopped before any checkpoint, go aside
        if not resume:
            return None
        if not (self.out_dir / CHECKPOINT).exists() and (self.out_dir / METRICS).exists():
            raise RunFolderError(f"{self.out_dir}: its run stopped before its first checkpoint, so there is "
                                 "nothing to resume; run again without --resume to start it afresh")
        payload = load_checkpoint(self.out_dir / CHECKPOINT)
        for key in ("train_state", "rng", "step"):
            if key not in payload:
                raise CheckpointError(f"{self.out_dir / CHECKPOINT}: cannot resume from it: it holds no '{key}' "
                                      "(a checkpoint slimmed for using the model, not for training on)")
        return payload

    def _setup_data(self, data, allow_missing) -> tuple[DataSplits | None, set[str]]:
        """The data set (a fine-tune on the user's items pairs them with the built-in set) and what is
        evaluated. Returns the built-in set to rehearse (a fine-tune) and the modalities the user's items bring."""
        self.data = load_source(data) if isinstance(data, str) else data
        builtin, brought = None, set(MODALITIES)
        if self.init is not None and self.data.source != "builtin":
            builtin = load_source("builtin")
            brought = brought_files(self.data.splits.get("train", []))   # before recordings get built-in pairs
            self.data = teach_splits(self.data, builtin)
        check_trainable(self.data, allow_missing)
        # evaluated on the validation split, or on the test split where a source has no validation split
        self.eval_split = "val" if self.data.splits.get("val") else "test"
        self.eval_items = self.data.splits.get(self.eval_split) or []
        return builtin, brought

    def _setup_model(self, start) -> None:
        """The model (from a fine-tune's start, or fresh), what of it learns, and its training step."""
        cfg = self.cfg
        torch.manual_seed(cfg.train.seed)
        check_fits(cfg, cfg.data.batch_size, self.device)   # refused with the estimate, before any allocation
        self.model = NLMM(cfg).to(self.device)
        if start is not None:
            self.model.load_state_dict(start.state)
        self.frozen_parameters = self.model.learn_only(cfg.train.learn_only)
        forward_model = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            forward_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)  # batches may miss a modality; memory's TTT nets train on half the steps
        self.step_fn = TrainStep(self.model, cfg, self.device, forward_model,
                                 self.dist.average if self.dist.enabled else None)

    def _setup_batches(self, builtin: DataSplits | None) -> None:
        """The training items as batches: the data set (with the built-in set rehearsed in a fine-tune),
        its augmentation, the resumable sampler and the collate."""
        cfg, train_items = self.cfg, self.data.splits.get("train", [])
        per_rank = max(1, cfg.data.batch_size // self.dist.world_size)
        augment = None
        if cfg.data.augment:
            augment = SpeechAugment.from_folder(BUILTIN_ROOT, cfg.audio.sample_rate,
                                                int(cfg.audio.max_seconds * cfg.audio.sample_rate))
        self.dataset = MultimodalDataset(train_items, cfg, cache=len(train_items) <= CACHE_LIMIT,
                                         image_synth=self.data.image_synth, seed=cfg.train.seed,
                                         audio_augment=augment)
        if builtin is not None and cfg.data.mix_builtin > 0:
            rehearsed = builtin.splits["train"]
            self.dataset = MixedDataset(self.dataset, MultimodalDataset(
                rehearsed, cfg, cache=len(rehearsed) <= CACHE_LIMIT, image_synth=builtin.image_synth,
                seed=cfg.train.seed, audio_augment=augment))
            self.sampler = MixedBatchSampler(len(train_items), len(rehearsed), per_rank * self.dist.world_size,
                                             cfg.data.mix_builtin, cfg.train.seed, self.dist.rank,
                                             self.dist.world_size)
        else:
            self.sampler = ResumableBatchSampler(len(train_items), per_rank * self.dist.world_size,
                                                 cfg.train.seed, self.dist.rank, self.dist.world_size)
        self.collate = Collate(self.tokenizer, cfg.text.max_tokens)

    # ------------------------------------------------------------------ control (any thread)
    def subscribe(self, listener: Callable[[object], None], memory_frames: bool = False) -> None:
        """`listener` gets every event; with `memory_frames` also a MemoryFrame after each step."""
        self.listeners.append(listener)
        if memory_frames:
            self.memory_listeners.append(listener)

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def stop(self) -> None:
        self._stop.set()
        self._pause.clear()

    # ------------------------------------------------------------------ events
    def emit(self, event) -> None:
        if self.log is not None:
            self.log.write(event)
            if self._tb is not None:
                self._tb.write(event)
        for listener in self.listeners:
            listener(event)

    def _emit_memory_frame(self) -> None:
        snapshot = self.model.memory.snapshot(since=self._memory_at_start)
        frame = MemoryFrame("training", self.step, snapshot["slots"], snapshot["change"],
                            snapshot["last_write_slots"], snapshot["write_count"])
        for listener in self.memory_listeners:
            listener(frame)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_payload(self) -> dict:
        return model_payload(self.model, self.cfg, self.tokenizer, step=self.step,
                             train_state=self.step_fn.state_dict(),
                             rng={"torch": torch.get_rng_state()},
                             total_steps=self.total_steps, recall=self.last_recall,
                             **({"init": self.init} if self.init is not None else {}),
                             **({"trained_config": self.trained_config} if self.trained_config is not None else {}))

    def save(self) -> Path | None:
        """Raises FloatingPointError rather than write weights that hold NaN or infinity."""
        if not self.dist.is_main:
            return None
        payload = self.checkpoint_payload()
        broken = non_finite(payload["model"])
        if broken:
            raise FloatingPointError(f"the weights became NaN or infinite by step {self.step} ({broken[0]}); "
                                     "the learning rate may be too high")
        path = save_checkpoint(self.out_dir / CHECKPOINT, payload)
        self.emit(CheckpointSaved(self.step, str(path)))
        return path

    def _restore(self, payload: dict) -> None:
        upgrade(payload, self.model)
        self.model.load_state_dict(payload["model"])
        self.step_fn.load_state_dict(payload["train_state"])
        self.step = int(payload["step"])
        self.last_recall = payload.get("recall", {})
        torch.set_rng_state(payload["rng"]["torch"])

    # ------------------------------------------------------------------ the loop
    def _batches(self):
        """The run's batches from the next step on, from one loader (and its worker processes, if any)."""
        spanning = EpochSpanning(self.sampler, self.step + 1)
        # Its own generator: a DataLoader otherwise draws its worker seed from the global RNG.
        loader = DataLoader(EpochItems(self.dataset), batch_sampler=spanning, collate_fn=self.collate,
                            num_workers=self.workers(),
                            generator=torch.Generator().manual_seed(self.cfg.train.seed * 1000003))
        yield from loader

    def workers(self) -> int:
        """Worker processes preparing the batches: the config's `data.num_workers`, or for "auto" what
        this machine should give them (`engine.threads.data_workers`)."""
        chosen = self.cfg.data.num_workers
        return data_workers(self.device.type) if chosen == AUTO_WORKERS else int(chosen)

    def _report_errors(self, errors: list[str]) -> None:
        for message in errors:
            if message not in self._warned:
                self._warned.add(message)
                self.emit(DataWarning(message))

    def evaluate(self, items=None) -> dict:
        with intra_op_threads(work_threads()):   # the workers wait meanwhile: every core embeds
            recall = evaluate(self.model, items if items is not None else self.eval_items, self.cfg,
                              self.tokenizer, self.device)
        self.model.train()
        return recall

    def run(self) -> RunEnded:
        """Train until `total_steps`, a stop, or a failure. Returns how the run ended."""
        folder = RunFolder(self.out_dir) if self.dist.is_main else None
        try:
            with intra_op_threads(step_threads(self.workers(), self.device.type)):
                return self._run(folder)
        finally:
            if folder is not None:
                folder.release()

    def _run(self, folder: RunFolder | None) -> RunEnded:
        self.state = "running"
        try:
            if folder is not None:
                for name in folder.sweep_temp_files((CHECKPOINT, CONFIG)):
                    self.emit(DataWarning(f"removed {name}, left by a checkpoint write that was killed"))
                if self._starts_afresh and (self.out_dir / METRICS).exists():
                    kept = folder.set_aside(METRICS)
                    self.emit(DataWarning(f"{self.out_dir}: the metrics of the run stopped there before its first "
                                          f"checkpoint are kept as {kept}; this run starts {METRICS} afresh"))
                self._starts_afresh = False
                save_config(self.cfg, self.out_dir / "config.yaml")
                if self.tensorboard:
                    self._tb = TensorBoardLog(self.out_dir)
            self.model.memory.mark_trained()
            self._memory_at_start = self.model.memory.slots.detach().clone() if self.memory_listeners else None
            return self._loop()
        except FloatingPointError as err:
            kept = ("the last good checkpoint is kept" if (self.out_dir / CHECKPOINT).exists()
                    else "no checkpoint was written yet")
            return self._failed(f"{err}; training stopped, {kept}")
        except (CheckpointError, OSError) as err:  # disk full, `ulimit -f`, the folder made read-only
            reason = str(err) if isinstance(err, CheckpointError) else f"{err.filename or self.out_dir}: " \
                f"{err.strerror or err}"
            return self._failed(f"{reason}; training stopped at step {self.step}")
        finally:
            if self._tb is not None:
                self._tb.close()
                self._tb = None
            if self.log is not None:
                self.log.close()

    def _failed(self, message: str) -> RunEnded:
        self.state = "failed"
        final = RunEnded("failed", self.step, message, str(self.out_dir / CHECKPOINT))
        try:
            self.emit(final)
        except OSError:  # the run folder itself may be what failed: the listeners still hear of it
            for listener in self.listeners:
                listener(final)
        return final

    def _learnable(self, batch: dict) -> bool:
        """Whether the batch has a pair to learn from, on every rank alike (they step together)."""
        shares = shares_a_pair(batch)
        if self.dist.enabled:
            shares = float(self.dist.average(torch.tensor([float(shares)], device=self.device))) == 1.0
        return shares

    def _loop(self) -> RunEnded:
        batches = self._batches()
        started, started_step = time.perf_counter(), self.step
        while self.step < self.total_steps:
            if self._stop.is_set():
                break
            if self._pause.is_set():
                self.state = "paused"
                self.emit(PauseChanged(self.step))
                while self._pause.is_set() and not self._stop.is_set():
                    time.sleep(0.02)
                if self._stop.is_set():
                    break
                self.state = "running"
                self.emit(PauseChanged(self.step, "resumed"))
                started, started_step = time.perf_counter(), self.step
            batch = next(batches)
            self._report_errors(batch["errors"])
            if not self._learnable(batch):  # the batch is used up (a resumed run skips it too)
                self.step += 1
                self.emit(DataWarning(f"step {self.step}: batch skipped: no two of its items share "
                                      "two modalities"))
            else:
                result = self.step_fn(batch, batch_labels(batch, self.device),
                                      lr_scale(self.step + 1, self.total_steps, self.cfg.train.warmup_steps))
                self.step += 1
                elapsed = time.perf_counter() - started
                rate = (self.step - started_step) * self.cfg.data.batch_size / max(elapsed, 1e-9)
                eta = (self.total_steps - self.step) * self.cfg.data.batch_size / max(rate, 1e-9)
                self.emit(StepMetrics(self.step, result.loss, self.total_steps, result.pair_losses,
                                      tuple(result.stepped_levels), result.lrs, rate, eta, result.grad_norm,
                                      self.step_fn.loss.temperature))
                if self.memory_listeners:
                    self._emit_memory_frame()
            if self.dist.is_main and self.eval_items and (self.step % self.cfg.train.eval_every == 0):
                self.last_recall, self.last_recall_step = self.evaluate(), self.step
                self.emit(Evaluation(self.step, self.last_recall, self.eval_split))
            if self.step % self.cfg.train.checkpoint_every == 0:
                self.save()
        batches.close()   # the loader's worker processes end here, not when garbage is collected
        stopped = self.step < self.total_steps
        path = self.save()
        self.state = "stopped" if stopped else "finished"
        final = RunEnded(self.state, self.step, f"{self.state} at step {self.step}", str(path) if path else None)
        self.emit(final)
        return final
