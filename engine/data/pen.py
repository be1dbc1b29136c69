"""Pen strokes to pixels: how the studio's sketch pad turns a drawing into the image the model reads, and
how training renders the pen trajectories it makes up (`engine.data.trajectories`), so that "drawn with a
mouse" in training is exactly what the pad produces.

A drawing is a list of strokes, each a list of (x, y) points in the pad's unit square (y down). The pen is
round, PEN_SHARE of the pad's height wide; ink is dark on white paper, as the pad shows it.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PEN_SHARE = 0.07       # the pen's width as a share of the pad's height (the number then fills ~70 % of it)
RENDER_HEIGHT = 128    # pixels: the model sees 32 x 64, so more would only cost time
PAPER, INK = 255, 20   # grey levels
SUPERSAMPLE = 4        # drawn at 4x, then averaged down: antialiased edges


def render_strokes(strokes, height: int, width: int, pen_share: float = PEN_SHARE) -> np.ndarray:
    """Each stroke as a round-capped, round-joined polyline (a single point: a dot) -> (height, width) uint8
    grey, dark ink on white paper."""
    big_w, big_h = width * SUPERSAMPLE, height * SUPERSAMPLE
    canvas = Image.new("L", (big_w, big_h), PAPER)
    pen = ImageDraw.Draw(canvas)
    thickness = max(1.0, pen_share * height) * SUPERSAMPLE
    r = thickness / 2
    for stroke in strokes:
        points = [(float(x) * big_w, float(y) * big_h) for x, y in stroke]
        if len(points) > 1:
            pen.line(points, fill=INK, width=max(1, int(round(thickness))), joint="curve")
        for px, py in points[:: max(1, len(points) - 1)]:     # round caps at both ends
            pen.ellipse((px - r, py - r, px + r, py + r), fill=INK)
    return np.asarray(canvas.reduce(SUPERSAMPLE))
