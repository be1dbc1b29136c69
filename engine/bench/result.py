"""What every benchmark returns: its figures, its targets in one shape, and what ran.

    BenchResult("teach", figures={...}, targets={"numbers not taught, top-1": Target(0.75, 0.736)},
                ran=describe(device) | {"precision": "bfloat16"})

`as_dict()` is the JSON every `nlmm bench … --json` prints: the bench's own figures at the top level (each
benchmark measures different things), and the same four keys in all of them: `bench`, `targets` (name ->
{limit, value, at_most, met}), `targets_met` and `ran` (CPU, cores, threads, precision, load).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """A figure against its limit: met when `value` >= `limit` (or <= with `at_most`). A value of None was
    never reached (a run that ran out of budget) and is not met."""
    limit: float
    value: float | None
    at_most: bool = False

    @property
    def met(self) -> bool:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def as_dict(self) -> dict:
        return {"limit": self.limit, "value": self.value, "at_most": self.at_most, "met": self.met}

    def describe(self) -> str:
        """`value` against `limit` in words, e.g. "0.736 (>= 0.75): NOT met"."""
        shown = "not reached" if self.value is None else f"{self.value:.4g}"
        return f"{shown} ({'<=' if self.at_most else '>='} {self.limit:.4g}): {'met' if self.met else 'NOT met'}"


@dataclass(frozen=True)
class BenchResult:
    bench: str                   # its name in `nlmm bench NAME`
    figures: dict                # what it measured (JSON-ready), its own shape
    targets: dict[str, Target] = field(default_factory=dict)
    ran: dict = field(default_factory=dict)   # engine.bench.machine.describe() and the precision used
    quick: bool = False          # a smoke run: its figures mean nothing

    @property
    def targets_met(self) -> bool:
        return all(target.met for target in self.targets.values())

    def __getitem__(self, key: str):
        """The figure `key`, as the JSON reads it (tables and tests read figures by name)."""
        return self.figures[key] if key in self.figures else self.as_dict()[key]

    def as_dict(self) -> dict:
        return {"bench": self.bench, **self.figures,
                "targets": {name: target.as_dict() for name, target in self.targets.items()},
                "targets_met": self.targets_met, "ran": self.ran, "quick": self.quick}

    def targets_table(self) -> str:
        """One line per target: name, value against limit, met or not."""
        width = max((len(name) for name in self.targets), default=0)
        return "\n".join(f"  {name:<{width}}  {target.describe()}" for name, target in self.targets.items())
