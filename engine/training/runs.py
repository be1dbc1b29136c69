"""The run log: a run folder's `metrics.jsonl`, one JSON object a line for every step, evaluation,
checkpoint and ending (`engine.events.record`). Written by the trainer, read by `nlmm runs` and by the
studio's run history and curves.

A run resumed from its last checkpoint appends again from the step after it, so a log may hold a
step twice: readers keep the newest. Long runs hold hundreds of thousands of lines; listing runs reads
only the end of each file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.events import LOGGED, Evaluation, StepMetrics, from_record, record

METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"          # the config a run trained with, saved by the trainer as it starts
SUMMARY_SCAN_BYTES = 4 << 20   # how far back from its end a run's log is searched for a summary


class RunLog:
    """Appends events to a run's log. The file is opened once and stays open for the run; each line is
    flushed as it is written, so readers (the run history, `nlmm runs`) see the run as it goes."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / METRICS
        self._handle = None

    def write(self, event) -> None:
        if event.kind not in LOGGED:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(record(event)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class RunHistory:
    """Everything a run's log says, in step order, each step once (its newest values)."""
    steps: tuple[StepMetrics, ...]
    evaluations: tuple[Evaluation, ...]
    levels: tuple[str, ...]           # the CMS levels' names, from the learning rates logged

    @property
    def total_steps(self) -> int:
        return self.steps[-1].total_steps if self.steps else 0


def read_run(folder: str | Path) -> RunHistory:
    """The whole log of a run; a line that cannot be read is skipped, not fatal."""
    steps: list[StepMetrics] = []
    evaluations: list[Evaluation] = []
    levels: list[str] = []
    path = Path(folder) / METRICS
    if path.exists():
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                event = _parse(line)
                if isinstance(event, StepMetrics):
                    while steps and steps[-1].step >= event.step:   # resumed: the newest count
                        steps.pop()
                    steps.append(event)
                    levels += [name for name in event.lrs if name != "outer" and name not in levels]
                elif isinstance(event, Evaluation):
                    while evaluations and evaluations[-1].step >= event.step:
                        evaluations.pop()
                    evaluations.append(event)
    return RunHistory(tuple(steps), tuple(evaluations), tuple(levels))


def _parse(line: str | bytes):
    try:
        return from_record(json.loads(line))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def last_events(path: str | Path, kinds: tuple[str, ...] = ("step", "eval"), chunk: int = 1 << 16) -> dict:
    """The last event of each kind in a log, read backwards a chunk at a time (reading a 100 000-step
    log whole takes about a second). Searches SUMMARY_SCAN_BYTES at most."""
    found: dict = {}
    try:
        handle = Path(path).open("rb")
    except OSError:
        return found
    with handle:
        pos = handle.seek(0, 2)
        scanned, carry = 0, b""
        while pos > 0 and len(found) < len(kinds) and scanned < SUMMARY_SCAN_BYTES:
            size = min(chunk, pos)
            pos -= size
            scanned += size
            handle.seek(pos)
            lines = (handle.read(size) + carry).split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""    # maybe the end of a line that starts further back
            for line in reversed(lines):
                event = _parse(line) if line.strip() else None
                if event is not None and event.kind in kinds and event.kind not in found:
                    found[event.kind] = event
    return found


@dataclass(frozen=True)
class ComparedRun:
    """A run as "Compare runs" shows it: its whole log and the config it trained with."""
    folder: str
    history: RunHistory
    config: dict | None             # the validated config as plain data, None when it cannot be read
    config_problem: str = ""        # why there is no config (one line)

    @property
    def name(self) -> str:
        return Path(self.folder).name


def read_for_comparison(folders, progress=None) -> tuple[ComparedRun, ...]:
    """Each run's log and config, in the order given. A run without a readable config is compared by its
    curves alone (`config_problem` says why). `progress(done, total)` is called before each run."""
    from engine.config import ConfigError, config_to_dict, load_config
    compared = []
    for n, folder in enumerate(folders):
        if progress is not None:
            progress(n, len(folders))
        config, problem = None, ""
        path = Path(folder) / CONFIG
        if not path.exists():
            problem = f"{Path(folder).name}: no {CONFIG} (a run from before configs were saved?)"
        else:
            try:
                config = config_to_dict(load_config(path))
            except ConfigError as err:
                problem = f"{Path(folder).name}: {err}"
        compared.append(ComparedRun(str(folder), read_run(folder), config, problem))
    return tuple(compared)


def flatten_config(config: dict, prefix: str = "") -> dict[str, object]:
    """{"train": {"lr": 1e-3}, "cms_levels": [{"name": "fast"}]} -> {"train.lr": 1e-3, "cms_levels[0].name": "fast"},
    the key paths config errors name."""
    flat: dict[str, object] = {}
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for key, value in items:
        path = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)):
            flat.update(flatten_config(value, path))
        else:
            flat[path] = value
    return flat


def config_differences(configs) -> list[tuple[str, tuple]]:
    """The settings whose values are not the same in every config there is, in the first config's key order:
    [(key path, (value in run 1, value in run 2, …))]. A setting a config lacks is None; a missing config
    (None) is left out of the comparison and has None everywhere."""
    flat = [flatten_config(c) if c is not None else None for c in configs]
    present = [f for f in flat if f is not None]
    keys = list(dict.fromkeys(key for f in present for key in f))
    rows = []
    for key in keys:
        values = [f.get(key) for f in present]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, tuple(None if f is None else f.get(key) for f in flat)))
    return rows


def describe_step(step: StepMetrics) -> str:
    return f"{step.step}/{step.total_steps or '?'} steps, loss {step.loss:.3f}"


@dataclass(frozen=True)
class RunSummary:
    folder: str
    last_step: StepMetrics | None
    last_evaluation: Evaluation | None
    has_checkpoint: bool

    @property
    def name(self) -> str:
        return Path(self.folder).name

    def as_dict(self) -> dict:
        last, evaluation = self.last_step, self.last_evaluation
        return {"run": self.folder, "step": last.step if last else 0, "total_steps": last.total_steps if last else 0,
                "loss": last.loss if last else None, "best_r1": evaluation.best_r1() if evaluation else None,
                "checkpoint": self.has_checkpoint}

    def describe(self) -> str:
        """"1200/3000 steps, loss 0.412, best R@1 87%" (", no checkpoint" when there is none)."""
        parts = []
        if self.last_step is not None:
            parts.append(describe_step(self.last_step))
        if self.last_evaluation is not None:
            parts.append(f"best R@1 {100 * self.last_evaluation.best_r1():.0f}%")
        if not self.has_checkpoint:
            parts.append("no checkpoint")
        return ", ".join(parts) or "empty"


def summarize(folder: str | Path) -> RunSummary:
    folder = Path(folder)
    last = last_events(folder / METRICS)
    return RunSummary(str(folder), last.get("step"), last.get("eval"), (folder / CHECKPOINT).exists())


def list_runs(runs_dir: str | Path) -> list[RunSummary]:
    """The run folders under `runs_dir` (those with a log or a checkpoint), newest name first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    folders = [p for p in runs_dir.iterdir() if p.is_dir() and ((p / METRICS).exists() or (p / CHECKPOINT).exists())]
    return [summarize(folder) for folder in sorted(folders, reverse=True)]
