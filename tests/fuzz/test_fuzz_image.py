"""Image decoding under generated and damaged files: a finite tensor of the config's size in [0, 1], or
a one-line DataError naming the file."""
import io

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.config import ImageConfig
from engine.data.errors import DataError
from engine.data.image import load_image
from tests.fuzz.conftest import one_line

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow notes damaged TIFF tags as it reads
CONFIGS = {"ink": ImageConfig(), "photo": ImageConfig(height=48, width=48, channels=3, preprocess="photo")}
MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV", "La", "RGBa"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO", "TGA"]


def check(path, style: str) -> None:
    cfg = CONFIGS[style]
    try:
        tensor = load_image(path, cfg)
    except DataError as err:
        assert one_line(str(err)) and str(path) in str(err), str(err)
        return
    assert tensor.shape == (cfg.channels, cfg.height, cfg.width) and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all() and 0 <= float(tensor.min()) and float(tensor.max()) <= 1


@st.composite
def pictures(draw):
    mode = draw(st.sampled_from(MODES))
    width = draw(st.one_of(st.integers(1, 64), st.integers(1, 20_000)))
    height = draw(st.one_of(st.integers(1, 64), st.integers(1, 20_000)))
    assume(width * height <= 400_000)  # long thin strips yes; big pictures only slow the run down
    pattern = draw(st.sampled_from(["noise", "flat", "stroke", "extremes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    grey = {"noise": lambda: rng.integers(0, 256, (height, width)),
            "flat": lambda: np.full((height, width), draw(st.integers(0, 255))),
            "stroke": lambda: np.where(np.arange(width)[None, :] % 7 < 2, 255, 10) * np.ones((height, 1)),
            "extremes": lambda: np.where(rng.random((height, width)) < 0.5, 0, 255)}[pattern]().astype(np.uint8)
    image = Image.fromarray(grey, "L")
    if mode == "F":
        values = grey.astype(np.float32) / 255
        values[rng.random(values.shape) < 0.05] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1.0]))
        return Image.fromarray(values, "F")
    try:
        return image.convert(mode)
    except ValueError:
        return Image.new(mode, (width, height))


@settings(max_examples=240)
@given(picture=pictures(), fmt=st.sampled_from(FORMATS), style=st.sampled_from(sorted(CONFIGS)))
def test_generated_pictures_in_any_format_prepare_or_say_why(scratch, picture, fmt, style):
    buffer = io.BytesIO()
    try:
        picture.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # Pillow cannot write this mode in this format
    path = scratch / f"picture.{fmt.lower()}"
    path.write_bytes(buffer.getvalue())
    check(path, style)


@settings(max_examples=80)
@given(picture=pictures(), style=st.sampled_from(sorted(CONFIGS)))
def test_pictures_handed_over_in_memory_prepare_or_say_why(picture, style):
    """The studio passes pasted pictures as Pillow images, not files."""
    from engine.data.image import prepare_image
    cfg = CONFIGS[style]
    try:
        tensor = prepare_image(picture, cfg, "pasted image")
    except DataError as err:
        assert one_line(str(err)) and str(err).startswith("pasted image: ")
        return
    assert tensor.shape == (cfg.channels, cfg.height, cfg.width) and torch.isfinite(tensor).all()


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


VALID = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")}


@settings(max_examples=300)
@given(fmt=st.sampled_from(sorted(VALID)), data=st.data(), style=st.sampled_from(sorted(CONFIGS)))
def test_damaged_image_files_prepare_or_say_why(scratch, fmt, data, style):
    original = VALID[fmt]
    blob = bytearray(original[: data.draw(st.integers(0, len(original)))])
    for where, value in data.draw(st.lists(st.tuples(st.integers(0, len(original)), st.integers(0, 255)),
                                           max_size=10)):
        if blob:
            blob[where % len(blob)] = value
    path = scratch / f"damaged.{fmt.lower()}"
    path.write_bytes(bytes(blob))
    check(path, style)


@settings(max_examples=80)
@given(blob=st.binary(max_size=2000), style=st.sampled_from(sorted(CONFIGS)))
def test_random_bytes_are_a_one_line_error(scratch, blob, style):
    path = scratch / "noise.png"
    path.write_bytes(blob)
    check(path, style)


@settings(max_examples=120)
@given(dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int64, np.uint16, np.float16, np.float32, np.float64,
                              np.bool_, np.complex64]),
       shape=st.one_of(st.tuples(st.integers(0, 300), st.integers(0, 300)),
                       st.tuples(st.integers(1, 80), st.integers(1, 80), st.integers(0, 5)),
                       st.tuples(st.integers(0, 2000)), st.tuples(st.integers(1, 4), st.integers(1, 4),
                                                                  st.integers(1, 4), st.integers(1, 3))),
       scale=st.sampled_from([1.0, 255.0, 1e6, np.nan, np.inf]), style=st.sampled_from(sorted(CONFIGS)),
       seed=st.integers(0, 2**16))
def test_pixel_arrays_of_any_type_and_shape_prepare_or_say_why(dtype, shape, scale, style, seed):
    """What the studio's sketch pad (or a caller of the engine) hands over as pixels: any array."""
    from engine.data.image import image_from_array, prepare_image
    raw = np.random.default_rng(seed).random(shape) * scale
    with np.errstate(invalid="ignore", over="ignore"):
        array = raw.astype(dtype)
    cfg = CONFIGS[style]
    try:
        tensor = prepare_image(image_from_array(array, "drawing"), cfg, "drawing")
    except DataError as err:
        assert one_line(str(err)) and str(err).startswith("drawing: "), str(err)
        return
    assert tensor.shape == (cfg.channels, cfg.height, cfg.width) and torch.isfinite(tensor).all()
    assert 0 <= float(tensor.min()) and float(tensor.max()) <= 1
