"""A plot's view that follows growing curves, moving only when the data leaves it.

pyqtgraph's auto-range recomputes every curve's bounds after each `setData` and moves the view at every
training step; each move regenerates the axes' ticks and repaints everything (120 ms per update at
2 000 steps, measured). Here the x range grows in 1-2-5 steps (or to the run's last step) and the
y range is the data's running bounds with a margin (from 0 for data that is never negative, as a loss),
so the view moves a few dozen times in a whole run.

As with auto-range, panning or zooming by hand stops the following; pyqtgraph's "A" button (which turns
its own auto-range back on) hands the view back to this, the cheap way.
"""
from __future__ import annotations

import math

Y_MARGIN = 0.08     # of the data's span, on each side
Y_ROOM = 0.25       # extra room on a side the data outgrew: it is likely to go on (a falling loss)
Y_SHRINK = 0.6      # the view shrinks back when the data fills less than this share of it
MIN_X_SPAN = 50     # steps: the first steps do not move the view at every step
MIN_LOG_SPAN = 0.3  # decades: the narrowest view of a log axis


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above `value` (value > 0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10.0 * power


class FollowRange:
    """Plots whose x axes are linked (the first one leads) follow the run together: x grows for all,
    each plot's y follows its own data or stays at a fixed range. A hand-made pan or zoom on any of them
    stops the following (x is shared); the "A" button of any of them restarts it."""

    def __init__(self, plots: list, fixed_y: dict | None = None):
        self.plots = list(plots)
        self.fixed_y = dict(fixed_y or {})   # plot -> (low, high) kept whatever the data
        self.following = True
        self.x_range: tuple[float, float] | None = None
        self.y_ranges: dict = {}
        for plot in self.plots:
            plot.vb.sigRangeChangedManually.connect(self._moved_by_hand)
        self.restart()

    def _moved_by_hand(self, *_) -> None:
        self.following = False

    def restart(self) -> None:
        """A new run, a reopened one, or the "A" button: follow again from scratch."""
        self.following = True
        self.x_range = None
        self.y_ranges = {}
        for plot in self.plots:
            plot.vb.disableAutoRange()
            if plot in self.fixed_y:
                plot.vb.setYRange(*self.fixed_y[plot], padding=0)

    def forget_y(self, plot) -> None:
        """The plot's y scale changed (log on or off): its next bounds set the view afresh."""
        self.y_ranges.pop(plot, None)

    def update(self, x_first: float, x_last: float, x_end: float | None = None,
               y_bounds: dict | None = None) -> None:
        """x_first..x_last: the steps drawn; x_end: the run's last step when known; y_bounds: plot ->
        the data's (min, max) in data units (a log axis is handled here)."""
        if any(any(plot.vb.autoRangeEnabled()) for plot in self.plots):
            self.restart()
        if not self.following:
            return
        right = nice_ceiling(max(x_last - x_first, MIN_X_SPAN)) + x_first
        if x_end is not None and x_last <= x_end < right:
            right = float(x_end)
        x_range = (float(x_first), max(right, float(x_first) + 1.0))
        if x_range != self.x_range:
            self.x_range = x_range
            self.plots[0].vb.setXRange(*x_range, padding=0.02)
        for plot, bounds in (y_bounds or {}).items():
            if bounds is not None and plot not in self.fixed_y:
                self._follow_y(plot, *bounds)

    def _follow_y(self, plot, low: float, high: float) -> None:
        log = plot.getAxis("left").logMode
        if log:
            if high <= 0:
                return
            low = math.log10(low) if low > 0 else math.log10(high) - 1
            high = math.log10(high)
        elif low >= 0:
            low = 0.0           # never negative (a loss): the view starts at 0 and only its top moves
        if not (math.isfinite(low) and math.isfinite(high)):
            return
        # flat data (one step, equal rates) gets a readable span, not a view a millionth wide
        min_span = MIN_LOG_SPAN if log else (0.1 * abs(high) if high else 1.0)
        if high - low < min_span:
            middle = (high + low) / 2
            low, high = middle - min_span / 2, middle + min_span / 2
        span = high - low
        current = self.y_ranges.get(plot)
        below = above = Y_MARGIN
        if current is not None:
            lo, hi = current
            if lo <= low and high <= hi and (high - low) >= Y_SHRINK * (hi - lo):
                return
            below = Y_ROOM if low < lo else Y_MARGIN
            above = Y_ROOM if high > hi else Y_MARGIN
        bottom = low if (low == 0.0 and not log) else low - below * span
        self.y_ranges[plot] = (bottom, high + above * span)
        plot.vb.setYRange(*self.y_ranges[plot], padding=0)
