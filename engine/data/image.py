"""Images in: any format Pillow reads, any mode (1, L, P, RGB, RGBA, LA, CMYK, 16-bit) and any size.
Images out: a float tensor (C, H, W) in [0, 1] of the config's size.

Two styles (`image.preprocess`):
- ink: handwriting. Light strokes on a dark ground, cropped to the writing and letter-boxed, so a phone
  photo of a number written on paper (dark on light) ends up like the training images.
- photo: natural images. Resize the short side, centre crop (torchvision).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

from engine.config import ImageConfig
from engine.data.errors import DataError, first_line

MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding a single pixel
INK_THRESHOLD = 0.35     # after contrast stretching, what counts as writing when cropping
# The ink crop is shrunk to at most this many times the model's size before letter-boxing: the box of a
# 1 x 200 000 strip would otherwise be 100 000 x 200 000 pixels (an 859-byte PNG asking for 298 GiB).
LETTERBOX_OVERSIZE = 4


def open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{path}: image too large ({width}x{height} pixels; at most {MAX_PIXELS:,})")
            image.load()
        return ImageOps.exif_transpose(image)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        size = path.stat().st_size if path.exists() else -1
        what = "empty file (0 bytes)" if size == 0 else "not an image Pillow can read"
        raise DataError(f"{path}: {what}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image too large (decompression bomb guard)") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not an image file") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: damaged or truncated image ({first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - Pillow's format plugins raise whatever corrupt bytes make
        # their parsers hit (struct.error, IndexError, EOFError, ZeroDivisionError, …): all mean "damaged"
        raise DataError(f"{path}: damaged image ({type(err).__name__}: {first_line(err)})") from None


def to_float_array(image: Image.Image, name: str = "image") -> np.ndarray:
    """Any Pillow mode -> (H, W, 1 or 3) float32 in [0, 1]. Transparency is composited on white paper."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = 65535.0 if mode.startswith("I;16") else max(float(array.max(initial=0.0)), 1.0)
        return np.clip(array / top, 0, 1)[..., None]
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA"):
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA")).convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "RGB"):
        try:
            image = image.convert("RGB")
        except ValueError:  # LAB, HSV and a few rarer modes have no direct conversion
            raise DataError(f"{name}: image mode {mode} is not supported; save it as RGB or grey") from None
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def _shrink(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale down (antialiased) so that it fits LETTERBOX_OVERSIZE times (height, width); else as is."""
    h, w = grey.shape
    scale = min(LETTERBOX_OVERSIZE * height / h, LETTERBOX_OVERSIZE * width / w)
    if scale >= 1:
        return grey
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    return TF.resize(torch.from_numpy(np.ascontiguousarray(grey))[None], size, antialias=True)[0].numpy()


def _letterbox(grey: np.ndarray, aspect: float) -> np.ndarray:
    """Pad with the (dark) ground to width/height = aspect, content centred."""
    h, w = grey.shape
    if w / h < aspect:
        new_w, new_h = int(round(h * aspect)), h
    else:
        new_w, new_h = w, int(round(w / aspect))
    canvas = np.zeros((max(new_h, 1), max(new_w, 1)), dtype=np.float32)
    top, left = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
    canvas[top: top + h, left: left + w] = grey
    return canvas


def ink_array(array: np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W, C) in [0, 1] -> light-on-dark grey, contrast-stretched and cropped to the writing."""
    grey = array.mean(axis=-1) if array.shape[-1] == 3 else array[..., 0]
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:
        grey = 1.0 - grey  # dark writing on light paper -> light writing on a dark ground
    low, high = np.percentile(grey, [1, 99.5])
    if high - low < 0.05:
        raise DataError(f"{name}: image has no content (a single flat colour)")
    grey = np.clip((grey - low) / (high - low), 0, 1)
    rows, cols = np.nonzero(grey > INK_THRESHOLD)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    margin = max(1, int(0.12 * max(bottom - top, right - left)))
    grey = grey[max(0, top - margin): bottom + margin, max(0, left - margin): right + margin]
    return grey


def prepare_image(image: Image.Image, cfg: ImageConfig, name: str = "image") -> torch.Tensor:
    array = to_float_array(image, name)
    size = [cfg.height, cfg.width]
    if cfg.preprocess == "ink":
        grey = _letterbox(_shrink(ink_array(array, name), cfg.height, cfg.width), cfg.width / cfg.height)
        tensor = torch.from_numpy(grey)[None]
        tensor = TF.resize(tensor, size, antialias=True).clamp(0, 1)
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        # Centre crop to the model's aspect first, then resize: resizing the short side first would
        # stretch a 1 x 200 000 strip to 64 x 12.8 M pixels before cropping.
        h, w = tensor.shape[-2:]
        crop = [min(h, max(1, round(w * cfg.height / cfg.width))), min(w, max(1, round(h * cfg.width / cfg.height)))]
        tensor = TF.resize(TF.center_crop(tensor, crop), size, antialias=True).clamp(0, 1)
    if tensor.shape[0] != cfg.channels:
        tensor = tensor.mean(0, keepdim=True) if cfg.channels == 1 else tensor.expand(3, -1, -1).clone()
    return tensor.contiguous()


def load_image(path: str | Path, cfg: ImageConfig) -> torch.Tensor:
    return prepare_image(open_image(path), cfg, str(path))
