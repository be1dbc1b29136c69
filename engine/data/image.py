"""Images in: any format Pillow reads, any mode (1, L, P, RGB, RGBA, LA, CMYK, 16-bit) and any size.
Images out: a float tensor (C, H, W) in [0, 1] of the config's size.

Two styles (`image.preprocess`):
- ink: handwriting. Light strokes on a dark ground, cropped to the writing and letter-boxed, so a phone
  photo of a number written on paper (dark on light) ends up like the training images.
- photo: natural images. Centre crop to the model's aspect, then resize.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.config import ImageConfig
from engine.data.errors import DataError, file_problem, first_line


def resize(tensor: torch.Tensor, size: list[int]) -> torch.Tensor:
    """(C, H, W) -> (C, *size), bilinear with antialiasing: the kernel torchvision's `resize` calls for a float
    tensor (bit for bit; tests/engine/test_image.py), without importing torchvision, which takes 1.5 s (its
    models, datasets and torch._dynamo) on every process's first image."""
    return F.interpolate(tensor[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def center_crop(tensor: torch.Tensor, size: list[int]) -> torch.Tensor:
    """(C, H, W) -> its centre (C, *size), offsets rounded as torchvision's `center_crop` rounds them."""
    h, w = tensor.shape[-2:]
    top, left = int(round((h - size[0]) / 2.0)), int(round((w - size[1]) / 2.0))
    return tensor[..., top: top + size[0], left: left + size[1]]

MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding a single pixel
INK_THRESHOLD = 0.35     # after contrast stretching, what counts as writing when cropping
WORKING_SIDE = 384       # ink images are cleaned at most this large (the model sees 32 x 64)
BACKGROUND_SIDE = 64     # the paper's light is estimated at most this large
# The ink crop is shrunk to at most this many times the model's size before letter-boxing: the box of a
# 1 x 200 000 strip would otherwise be 100 000 x 200 000 pixels (an 859-byte PNG asking for 298 GiB).
LETTERBOX_OVERSIZE = 4


def open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    problem = file_problem(path, "image file")
    if problem:
        raise DataError(f"{path}: {problem}")
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


def image_from_array(array, name: str = "image") -> Image.Image:
    """An image handed over as pixels (a drawing from the studio's sketch pad): (H, W) grey or (H, W, 3|4)
    colour, integer levels 0..255 or floats in [0, 1] -> a Pillow image, checked like a file would be."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or 0 in array.shape:
        raise DataError(f"{name}: pixels of shape {tuple(array.shape)} are not an image "
                        "(expected height x width, optionally x 3 or 4 channels)")
    if array.shape[0] * array.shape[1] > MAX_PIXELS:
        raise DataError(f"{name}: image too large ({array.shape[1]}x{array.shape[0]} pixels; at most {MAX_PIXELS:,})")
    if array.dtype.kind not in "fiub":
        raise DataError(f"{name}: pixels must be real numbers, got {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{name}: pixels must be finite numbers, got NaN or infinity")
    if array.dtype.kind in "fb":    # floats (and booleans) are shares of white: 0..1
        array = np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:   # other integers are levels 0..255, as uint8 ones
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array), mode=None)


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
    return resize(torch.from_numpy(np.ascontiguousarray(grey))[None], size)[0].numpy()


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


MIN_INK_PIXELS = 8   # the fewest pixels of ink that still make a number


def flatten_background(grey: np.ndarray) -> np.ndarray:
    """(H, W) grey in [0, 1] of dark writing on paper -> ink strength in [0, 1] against the local paper.

    A phone photo of paper is lit unevenly and may show a shadow or the table around the page. A closing
    (max then min filter) wider than any stroke removes the writing and keeps the page's own light, shadow
    edges and the table; ink is then how much darker a pixel is than its paper. Light varies slowly, so the
    paper is estimated on a copy at most BACKGROUND_SIDE pixels wide and scaled back up. (Light writing on
    a dark ground, as the training images are, is left as it is: a filter narrower than the thickest blob
    of ink would cut holes into it.)"""
    h, w = grey.shape
    t = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))[None, None]
    scale = min(1.0, BACKGROUND_SIDE / max(h, w))
    small = t if scale == 1.0 else F.interpolate(t, size=(max(1, round(h * scale)), max(1, round(w * scale))),
                                                 mode="area")
    k = max(3, int(0.25 * min(small.shape[-2:])) | 1)

    def grow(x):  # a k x k max filter, as two separable passes
        x = F.max_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0))
        return F.max_pool2d(x, (1, k), stride=1, padding=(0, k // 2))

    paper = -grow(-grow(small))
    if scale != 1.0:
        paper = F.interpolate(paper, size=(h, w), mode="bilinear", align_corners=False)
    return ((paper - t) / paper.clamp_min(0.05)).clamp(0, 1)[0, 0].numpy()


def writing_mask(grey: np.ndarray) -> np.ndarray:
    """Where the writing is, for the crop. In a photo (at least 96 pixels a side) a 3 x 3 opening first
    drops hairlines thinner than any pen stroke at that size: the page's edge, a fold, a shadow's rim,
    which would otherwise widen the crop and leave the number small in a corner."""
    mask = grey > INK_THRESHOLD
    if min(grey.shape) < 96:
        return mask
    t = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))[None, None]
    opened = F.max_pool2d(-F.max_pool2d(-t, 3, stride=1, padding=1), 3, stride=1, padding=1)[0, 0].numpy()
    core = opened > INK_THRESHOLD
    return core if core.any() else mask


def ink_array(array: np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W, C) in [0, 1] -> light-on-dark grey, background flattened, contrast-stretched and cropped
    to the writing."""
    grey = array.mean(axis=-1) if array.shape[-1] == 3 else array[..., 0]
    shape, full = grey.shape, grey   # the full image's contrast is read only if the shrunk one has none
    if max(grey.shape) > WORKING_SIDE:   # a 12-megapixel photo holds no more of a number than this
        scale = WORKING_SIDE / max(grey.shape)
        size = [max(1, round(grey.shape[0] * scale)), max(1, round(grey.shape[1] * scale))]
        grey = resize(torch.from_numpy(np.ascontiguousarray(grey))[None], size)[0].numpy()
    if float(np.median(grey)) > 0.5:  # dark writing on paper (the paper is most of the picture)
        grey = flatten_background(grey)
    low, high = np.percentile(grey, [1, 99.5])
    if high - low < 0.05:   # ink on under 0.5 % of the pixels (a thin, small "1"): its own brightest pixels
        high = float(np.sort(grey, axis=None)[-min(grey.size, MIN_INK_PIXELS)])
    if high - low < 0.05:
        if full is not grey and float(np.ptp(full)) >= 0.05:   # contrast finer than a number's strokes: noise,
            # or a 1-pixel strip (shrinking averaged it out to grey)
            raise DataError(f"{name}: no writing to read: its {shape[1]}x{shape[0]} pixels vary only in detail "
                            f"finer than {WORKING_SIDE} pixels across (noise or a thin strip)")
        raise DataError(f"{name}: image has no content (a single flat colour)")
    grey = np.clip((grey - low) / (high - low), 0, 1)
    rows, cols = np.nonzero(writing_mask(grey))
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
        tensor = resize(tensor, size).clamp(0, 1)
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        # Centre crop to the model's aspect first, then resize: resizing the short side first would
        # stretch a 1 x 200 000 strip to 64 x 12.8 M pixels before cropping.
        h, w = tensor.shape[-2:]
        crop = [min(h, max(1, round(w * cfg.height / cfg.width))), min(w, max(1, round(h * cfg.width / cfg.height)))]
        tensor = resize(center_crop(tensor, crop), size).clamp(0, 1)
    if tensor.shape[0] != cfg.channels:
        tensor = tensor.mean(0, keepdim=True) if cfg.channels == 1 else tensor.expand(3, -1, -1).clone()
    return tensor.contiguous()


def load_image(path: str | Path, cfg: ImageConfig) -> torch.Tensor:
    return prepare_image(open_image(path), cfg, str(path))
