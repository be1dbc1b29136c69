"""Numbers drawn with a mouse, a pen or a finger: single strokes with a round brush.

The digit shapes are Hershey single-stroke fonts (`resources/builtin/strokes.json`: per family, per digit,
strokes as point lists in a unit box, y down). Drawing adds what a hand adds: a wobble that drifts
slowly along each stroke, uneven proportions, slant, and a brush as thin as a pen or as wide as a finger.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.data.builtin import BUILTIN_ROOT, IMAGE_SIZE  # (height, width)

# {"train": {family: [digit][stroke][point] = [x, y]}, "heldout": {...}}: training draws only "train"
STROKES_FILE = "strokes.json"
SUPERSAMPLE = 4                 # draw at 4x, then downsample: antialiased strokes


def stroke_families(split: str, root=None) -> dict[str, list]:
    """The `split` ("train" or "heldout") stroke families of STROKES_FILE: family -> strokes per digit."""
    return json.loads((Path(root or BUILTIN_ROOT) / STROKES_FILE).read_text(encoding="utf-8"))[split]


def densify(stroke: np.ndarray, step: float = 0.04) -> np.ndarray:
    if len(stroke) < 2:
        return stroke
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    if t[-1] == 0:
        return stroke[:1]
    ts = np.linspace(0.0, t[-1], max(2, int(np.ceil(t[-1] / step)) + 1))
    return np.stack([np.interp(ts, t, stroke[:, 0]), np.interp(ts, t, stroke[:, 1])], axis=1)


def wobble(points: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Low-frequency displacement along the stroke (a hand drifts; it does not jitter per pixel)."""
    n = len(points)
    knots = max(2, n // 8 + 1)
    offsets = rng.normal(0.0, amount, size=(knots, 2))
    xs = np.linspace(0, n - 1, knots)
    return points + np.stack([np.interp(np.arange(n), xs, offsets[:, k]) for k in range(2)], axis=1)


def draw(label: int, digits: list, rng: np.random.Generator, width: float | None = None) -> np.ndarray:
    """`digits[d]` = strokes of digit d (unit box, height 1, x centred) -> light-on-dark uint8 (H, W).
    `width` is the brush width as a share of the digit height."""
    h, w = IMAGE_SIZE
    H, W = h * SUPERSAMPLE, w * SUPERSAMPLE
    placed, x, gap = [], 0.0, 0.0
    for d in str(label):
        strokes = [np.asarray(s, dtype=np.float64) for s in digits[int(d)] if len(s)]
        xs = np.concatenate([s[:, 0] for s in strokes])
        sx = rng.uniform(0.85, 1.15)  # a hand's digits are not all equally wide
        left = xs.min() * sx
        for s in strokes:
            placed.append(np.stack([(s[:, 0] * sx - left) + x, s[:, 1] + rng.uniform(-0.05, 0.05)], axis=1))
        gap = rng.uniform(0.12, 0.35)
        x += (xs.max() - xs.min()) * sx + gap
    total_w = x - gap
    height = rng.uniform(0.55, 0.85) * H
    scale = min(height, (W * 0.9) / max(total_w, 1e-6))
    shear, theta = rng.uniform(-0.3, 0.3), np.deg2rad(rng.uniform(-8.0, 8.0))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    m = rot @ np.array([[1.0, -shear], [0.0, 1.0]]) * scale
    centre = np.array([total_w / 2, 0.5])
    origin = np.array([W / 2 + rng.uniform(-0.08, 0.08) * W, H / 2 + rng.uniform(-0.06, 0.06) * H])
    brush = (rng.uniform(0.07, 0.17) if width is None else width) * scale
    canvas = Image.new("L", (W, H), 0)
    pen = ImageDraw.Draw(canvas)
    drift = rng.uniform(0.005, 0.03)
    for stroke in placed:
        pts = wobble(densify(stroke), rng, drift)
        xy = (pts - centre) @ m.T + origin
        line = [tuple(p) for p in xy]
        r = brush / 2
        if len(line) > 1:
            pen.line(line, fill=255, width=max(1, int(round(brush))), joint="curve")
        for px, py in (line[0], line[-1]):
            pen.ellipse((px - r, py - r, px + r, py + r), fill=255)
    small = canvas.resize((w, h), Image.LANCZOS)
    ink = rng.uniform(200.0, 255.0) / 255.0
    return np.clip(np.rint(np.asarray(small, np.float32) * ink), 0, 255).astype(np.uint8)


class SketchSynth:
    """Draws a number in a random one of the given stroke families."""

    def __init__(self, families: dict[str, list]):
        self.names = sorted(families)
        self.families = [families[name] for name in self.names]

    def __call__(self, label: int, rng: np.random.Generator) -> np.ndarray:
        return draw(label, self.families[int(rng.integers(len(self.families)))], rng)
