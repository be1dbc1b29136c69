"""Numbers drawn on the sketch pad, made up: pen trajectories as a hand moves a mouse, a pen or a finger,
rendered by the pad's own renderer (`engine.data.pen`).

The digit shapes are Hershey single-stroke fonts (`resources/builtin/strokes.json`). A hand changes them on
the way: digits of uneven width and height, slant and tilt, a path that drifts slowly from the ideal one,
strokes that overshoot their ends, a pen that lifts mid-stroke or does not lift between two strokes, and
an input device that reports points at its own rate (sparse where the hand moves fast: straight
segments) on a pad of any size (points on its pixel grid).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from engine.data.pen import RENDER_HEIGHT, render_strokes
from engine.data.sketched import densify, wobble


def _overshoot(stroke: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The pen runs on past a stroke's ends, along its direction there."""
    if len(stroke) < 2:
        return stroke
    ends = []
    for tip, before in ((stroke[0], stroke[1]), (stroke[-1], stroke[-2])):
        direction = tip - before
        norm = np.linalg.norm(direction)
        ends.append(tip + direction / norm * rng.uniform(0.0, 0.08) if norm > 0 and rng.random() < 0.4 else tip)
    return np.concatenate([ends[0][None], stroke, ends[1][None]])


def _sampled(stroke: np.ndarray, rng: np.random.Generator, step: float) -> np.ndarray:
    """The points an input device reports: one every `step` or so of path (in digit heights), jittered."""
    path = densify(stroke, 0.01)
    if len(path) < 3:
        return path
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    marks, at = [0.0], 0.0
    while at < t[-1]:
        at += step * rng.uniform(0.5, 1.5)
        marks.append(min(at, t[-1]))
    marks = np.array(marks)
    return np.stack([np.interp(marks, t, path[:, 0]), np.interp(marks, t, path[:, 1])], axis=1)


def trajectory(label: int, digits: list, rng: np.random.Generator, aspect: float) -> list[np.ndarray]:
    """`digits[d]` = Hershey strokes of digit d -> the strokes of `label` as the pad records them: point
    lists in the pad's unit square, for a pad `aspect` times as wide as high."""
    placed, x, gap = [], 0.0, 0.0
    for d in str(label):
        strokes = [np.asarray(s, dtype=np.float64) for s in digits[int(d)] if len(s)]
        xs = np.concatenate([s[:, 0] for s in strokes])
        sx, sy, dy = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.15), rng.uniform(-0.08, 0.08)
        left = xs.min() * sx
        digit = [np.stack([s[:, 0] * sx - left + x, s[:, 1] * sy + dy], axis=1) for s in strokes]
        if len(digit) > 1 and rng.random() < 0.2:   # the pen does not lift between two strokes
            k = int(rng.integers(len(digit) - 1))
            digit[k: k + 2] = [np.concatenate([digit[k], digit[k + 1]])]
        placed += digit
        gap = rng.uniform(0.08, 0.4)
        x += (xs.max() - xs.min()) * sx + gap
    total_w = x - gap
    # The number's height as a share of the pad's, within the pad's width; then slant, tilt and place it.
    height = min(rng.uniform(0.35, 0.85), 0.92 * aspect / max(total_w, 1e-6))
    shear, theta = rng.uniform(-0.35, 0.35), np.deg2rad(rng.uniform(-10.0, 10.0))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    m = rot @ np.array([[1.0, -shear], [0.0, 1.0]]) * height
    room_x, room_y = max(0.0, (aspect - total_w * height) / 2 - 0.03), max(0.0, (1 - height) / 2 - 0.03)
    origin = np.array([aspect / 2 + rng.uniform(-room_x, room_x), 0.5 + rng.uniform(-room_y, room_y)])
    centre = np.array([total_w / 2, 0.5])
    pad_pixels = rng.uniform(80.0, 400.0)     # the pad's height on screen: points land on its pixel grid
    step = rng.uniform(0.015, 0.08)           # how far the hand moves between two reported points
    drift = rng.uniform(0.005, 0.035)
    out = []
    for stroke in placed:
        path = wobble(densify(_overshoot(stroke, rng)), rng, drift)
        if len(path) > 8 and rng.random() < 0.1:   # the pen lifts mid-stroke and comes down a little on
            cut = int(rng.integers(3, len(path) - 3))
            pieces = [path[:cut], path[cut + 1:]]
        else:
            pieces = [path]
        for piece in pieces:
            points = (_sampled(piece, rng, step) - centre) @ m.T + origin
            points[:, 0] /= aspect
            out.append(np.clip(np.round(points * pad_pixels) / pad_pixels, 0.0, 1.0))
    if rng.random() < 0.5:    # strokes in another order: the renderer does not care, the pad records it
        out = out[::-1]
    return out


class PenSynth:
    """Draws a number on a pad of random shape in a random one of the stroke families, rendered as the
    pad renders it (dark ink on white)."""

    def __init__(self, families: dict[str, list]):
        self.names = sorted(families)
        self.families = [families[name] for name in self.names]

    def __call__(self, label: int, rng: np.random.Generator) -> Image.Image:
        aspect = rng.uniform(1.4, 2.8)     # the pad as the user has sized the window
        strokes = trajectory(label, self.families[int(rng.integers(len(self.families)))], rng, aspect)
        width = max(1, round(RENDER_HEIGHT * aspect))
        return Image.fromarray(render_strokes(strokes, RENDER_HEIGHT, width), "L")
