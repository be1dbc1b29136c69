"""The user's own digits: cut from the numbers they corrected, written into numbers they did not."""
import random

import numpy as np
import torch

from engine.config import load_config
from engine.user_digits import composable, cut, is_number, write

CFG = load_config("tiny").image


def number(*digits: np.ndarray, gap: int = 4) -> torch.Tensor:
    """A prepared-like image (1, 32, 64): the digit drawings side by side, `gap` dark columns apart."""
    image = np.zeros((32, 64), np.float32)
    x = 6
    for d in digits:
        image[:, x: x + d.shape[1]] = np.maximum(image[:, x: x + d.shape[1]], d)
        x += d.shape[1] + gap
    return torch.from_numpy(image)[None]


def bar(width: int, top: int = 4, bottom: int = 28) -> np.ndarray:
    """A digit drawing: a box drawn with a 2-pixel pen, `width` wide, between rows top and bottom (of 32)."""
    drawing = np.zeros((32, width), np.float32)
    drawing[top:bottom] = 1.0
    drawing[top + 2: bottom - 2, 2: width - 2] = 0.0
    return drawing


def ink_runs(image: torch.Tensor) -> list[tuple[int, int]]:
    """(first column, width) of each run of columns holding ink."""
    inked = (image[0] > 0.25).any(0).tolist() + [False]
    runs, start = [], None
    for x, on in enumerate(inked):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((start, x - start))
            start = None
    return runs


def test_a_number_is_cut_into_its_digits_which_write_a_number_never_shown():
    narrow, wide = bar(3), bar(12)
    pieces = cut(number(narrow, wide), "42")
    assert [d for d, _ in pieces] == ["4", "2"]
    assert [p.shape[1] for _, p in pieces] == [3, 12]
    digits = {d: [p] for d, p in pieces}
    written = write(24, digits, random.Random(1), CFG)   # "24": the wide 2 first, then the narrow 4 (a seed with a gap)
    assert written.shape == (1, CFG.height, CFG.width)
    (_, first), (_, second) = ink_runs(written)
    assert first > 2 * second


def test_a_small_raised_digit_stays_small_and_raised():
    """A hand that writes its 0 small and high (as DkgHandwriting does): its 0 keeps that place."""
    pieces = cut(number(bar(8), bar(6, top=4, bottom=12)), "60")
    digits = {d: [p] for d, p in pieces}
    written = write(90, {"9": digits["6"], "0": digits["0"]}, random.Random(1), CFG)[0]   # a seed with a gap
    (left, width), (zero_left, zero_width) = ink_runs(written[None])
    zero_rows = np.flatnonzero((written[:, zero_left: zero_left + zero_width] > 0.25).any(1).numpy())
    nine_rows = np.flatnonzero((written[:, left: left + width] > 0.25).any(1).numpy())
    assert zero_rows[0] <= nine_rows[0] + 1 and zero_rows[-1] < nine_rows[0] + 0.5 * (nine_rows[-1] - nine_rows[0])


def test_touching_digits_and_labels_that_are_not_numbers_are_not_cut():
    assert cut(number(bar(8), bar(8), gap=0), "11") == []          # no dark column between them
    assert cut(torch.zeros(1, 32, 64), "7") == []                   # no ink
    assert is_number("42", 42) and not is_number("cat", 3) and not is_number("7", 3) and not is_number("123", 123)
    digits = {"4": [bar(3)], "2": [bar(5)]}
    assert composable(range(100), digits) == [2, 4, 22, 24, 42, 44]
