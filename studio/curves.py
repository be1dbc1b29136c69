"""Curve storage for the training plots: growing numpy arrays and TensorBoard's debiased smoothing.

Plots are redrawn with `setData` on items made once; the data behind them lives here in preallocated
arrays that double when full, so appending a step is O(1) and a redraw never copies Python lists.
"""
from __future__ import annotations

import math

import numpy as np


class GrowingArray:
    def __init__(self, capacity: int = 1024):
        self._data = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def append(self, value: float) -> None:
        if self.size == len(self._data):
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self.size] = value
        self.size += 1

    def view(self) -> np.ndarray:
        return self._data[:self.size]

    def __len__(self) -> int:
        return self.size


class EmaSmoother:
    """TensorBoard's classic smoothing, one value at a time (new points cost O(1); the slider recomputes
    all): an exponential moving average divided by (1 - w^n), so the start of the curve is not dragged
    towards zero. Non-finite values pass through unsmoothed."""

    def __init__(self, weight: float):
        self.weight = min(max(weight, 0.0), 0.999)
        self.last = 0.0
        self.count = 0

    def push(self, value: float) -> float:
        if not math.isfinite(value):
            return value
        if self.weight == 0.0:
            return value
        self.last = self.last * self.weight + (1 - self.weight) * value
        self.count += 1
        return self.last / (1 - self.weight ** self.count)


class Series:
    """One curve: x (step), raw y, smoothed y, kept in step with a smoothing weight, and the running
    bounds of its finite values (the plot's view follows them without scanning the arrays)."""

    def __init__(self, weight: float = 0.0):
        self.x, self.y, self.smooth = GrowingArray(), GrowingArray(), GrowingArray()
        self._smoother = EmaSmoother(weight)
        self.low, self.high = math.inf, -math.inf

    def append(self, x: float, y: float) -> None:
        self.x.append(x)
        self.y.append(y)
        self.smooth.append(self._smoother.push(y))
        if math.isfinite(y):
            self.low, self.high = min(self.low, y), max(self.high, y)

    def set_weight(self, weight: float) -> None:
        self._smoother = EmaSmoother(weight)
        self.smooth = GrowingArray(max(1024, len(self.y)))
        for value in self.y.view():
            self.smooth.append(self._smoother.push(float(value)))

    def bounds(self) -> tuple[float, float] | None:
        """(min, max) of the finite raw values (the smoothed curve lies between them), None when empty."""
        return (self.low, self.high) if self.low <= self.high else None

    def __len__(self) -> int:
        return len(self.x)


def one_per_pixel(xs: np.ndarray, x0: float, x1: float, pixels: float) -> np.ndarray:
    """The visible sorted positions `xs` in [x0, x1], at most one per pixel column: markers drawn at
    every step of a long run would cost a line each (thousands) for the same picture."""
    visible = xs[np.searchsorted(xs, x0, side="left"):np.searchsorted(xs, x1, side="right")]
    if pixels <= 0 or len(visible) <= pixels:
        return visible
    per_pixel = (x1 - x0) / pixels
    columns = np.floor((visible - x0) / per_pixel)
    keep = np.ones(len(visible), dtype=bool)
    keep[1:] = columns[1:] != columns[:-1]
    return visible[keep]
