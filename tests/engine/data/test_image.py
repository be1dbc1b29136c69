"""Image loading: any mode and size; bad files are DataErrors; paper photos end up like training images."""
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import ImageConfig
from engine.data.builtin import load_builtin_manifest
from engine.data.errors import DataError
from engine.data.image import image_from_array, load_image, open_image, prepare_image
from tests.memory_limit import run_capped

INK = ImageConfig()  # 32 x 64 grey, ink style
PHOTO = ImageConfig(height=48, width=48, channels=3, patch_size=8, preprocess="photo")


def digit_like(size=(40, 30)) -> Image.Image:
    array = np.zeros(size[::-1], dtype=np.uint8)
    array[5:25, 12:18] = 255  # a "1" in light ink on a dark ground
    return Image.fromarray(array, "L")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "CMYK", "LA", "I;16", "I", "F"])
def test_every_pillow_mode_becomes_a_float_tensor_of_the_config_size(tmp_path, mode):
    image = digit_like()
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    else:
        image = image.convert(mode)
    for cfg, channels in ((INK, 1), (PHOTO, 3)):
        tensor = prepare_image(image, cfg)
        assert tensor.shape == (channels, cfg.height, cfg.width) and tensor.dtype == torch.float32
        assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0


def test_one_by_one_image_works_as_a_photo_and_is_flagged_as_blank_ink(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(path)
    assert load_image(path, PHOTO).shape == (3, 48, 48)
    with pytest.raises(DataError, match="no content"):
        load_image(path, INK)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge size: the guard must refuse it before decoding."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(np.random.default_rng(1).bytes(3000)), "not an image"),
    (lambda p: p.write_bytes(_png_claiming(20000, 20000)), "too large"),
])
def test_bad_images_are_one_line_data_errors_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(DataError) as info:
        load_image(path, INK)
    assert str(path) in str(info.value) and message in str(info.value) and "\n" not in str(info.value)


def test_truncated_image(tmp_path):
    path = tmp_path / "cut.png"
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (200, 200), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        open_image(path)


def test_a_photo_of_a_number_on_paper_looks_like_the_training_image(tmp_path):
    item = load_builtin_manifest()["test"][0]
    training = np.asarray(Image.open(item.image), dtype=np.float32) / 255.0
    # The same writing, dark on light grey paper, 6x larger, with sensor noise and an off-centre margin.
    paper = 0.85 - 0.7 * np.kron(training, np.ones((6, 6)))
    paper = np.pad(paper, ((40, 10), (30, 60)), constant_values=0.85)
    paper += np.random.default_rng(3).normal(0, 0.03, paper.shape)
    photo = Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    photo.save(tmp_path / "photo.jpg", quality=90)
    ours = load_image(tmp_path / "photo.jpg", INK)[0]
    reference = load_image(item.image, INK)[0]
    assert float(ours.mean()) < 0.5  # light writing on a dark ground now
    correlation = np.corrcoef(ours.flatten().numpy(), reference.flatten().numpy())[0, 1]
    assert correlation > 0.85


def _strip_png(path, width=200_000) -> None:
    """An 859-byte PNG of 1 x 200 000 pixels, half of it ink."""
    strip = np.zeros((1, width), dtype=np.uint8)
    strip[0, width // 4: 3 * width // 4] = 255
    Image.fromarray(strip, "L").save(path, optimize=True)


@pytest.mark.parametrize("preprocess", ["ink", "photo"])
def test_a_long_thin_strip_is_prepared_in_bounded_memory(tmp_path, preprocess):
    """Letter-boxing the strip asked for a 100 000 x 200 000 canvas (the probe saw 298 GiB), and the
    photo path stretched it to 64 x 12.8 M pixels before cropping."""
    path = tmp_path / "strip.png"
    _strip_png(path)
    assert path.stat().st_size < 2000
    cfg = "ImageConfig()" if preprocess == "ink" else "ImageConfig(height=48, width=48, channels=3, preprocess='photo')"
    imports = "import torch\nfrom engine.config import ImageConfig\nfrom engine.data.image import load_image\n"
    code = (f"tensor = load_image({str(path)!r}, {cfg})\n"
            "print(tuple(tensor.shape), bool(torch.isfinite(tensor).all()))\n")
    proc = run_capped(imports, code, extra_bytes=300 << 20)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("(")[1].startswith("1, 32, 64" if preprocess == "ink" else "3, 48, 48")
    assert proc.stdout.strip().endswith("True")


def test_image_modes_pillow_cannot_convert_are_one_line_errors(tmp_path):
    odd = Image.new("La", (20, 20))  # luminance with premultiplied alpha: no conversion to RGB
    with pytest.raises(DataError, match="scan.tif: image mode La is not supported"):
        prepare_image(odd, INK, "scan.tif")


def test_a_float_image_holding_nan_and_infinity_prepares_finite(tmp_path):
    array = np.asarray(digit_like(), dtype=np.float32) / 255.0
    array[0, 0], array[1, 1], array[2, 2] = np.nan, np.inf, -np.inf
    for cfg in (INK, PHOTO):
        tensor = prepare_image(Image.fromarray(array, "F"), cfg)
        assert torch.isfinite(tensor).all() and 0 <= float(tensor.min()) and float(tensor.max()) <= 1


def test_a_folder_named_like_an_image_is_a_one_line_error(tmp_path):
    (tmp_path / "photo.png").mkdir()
    with pytest.raises(DataError, match="a folder, not an image file"):
        load_image(tmp_path / "photo.png", INK)


def test_pixels_handed_over_prepare_exactly_like_the_same_image_read_from_a_file(tmp_path):
    """The studio's sketch pad hands over grey pixels (dark ink on white); a dropped file of the same
    drawing must reach the model as the same tensor."""
    paper = 255 - np.asarray(digit_like((120, 60)))
    path = tmp_path / "drawing.png"
    Image.fromarray(paper, "L").save(path)
    from_file = load_image(path, INK)
    for pixels in (paper, paper[..., None], np.repeat(paper[..., None], 3, axis=-1), paper / 255.0,
                   paper.astype(np.int32)):
        torch.testing.assert_close(prepare_image(image_from_array(pixels, "drawing"), INK, "drawing"), from_file,
                                   atol=1 / 255, rtol=0)


@pytest.mark.parametrize("pixels, message", [
    (np.zeros((0, 10), np.uint8), "not an image"),
    (np.zeros((4, 4, 2), np.uint8), "not an image"),
    (np.zeros(10, np.uint8), "not an image"),
    (np.full((8, 8), np.nan, np.float32), "finite"),
    (np.array([["a"]]), "real numbers"),
    (np.ones((8, 8), np.complex64), "real numbers"),
])
def test_pixels_that_are_not_an_image_are_one_line_data_errors(pixels, message):
    with pytest.raises(DataError, match=message) as caught:
        image_from_array(pixels, "drawing")
    assert str(caught.value).startswith("drawing: ") and "\n" not in str(caught.value)


def test_blank_pixels_say_the_drawing_is_empty():
    with pytest.raises(DataError, match="no content"):
        prepare_image(image_from_array(np.full((60, 120), 255, np.uint8), "drawing"), INK, "drawing")


def test_a_thin_small_one_is_read_and_a_lone_speck_is_not():
    """Ink on under 0.5 % of the pixels is still a number (a thin "1" in a 32 x 64 image: 9 pixels); a
    speck of fewer pixels than any number has is not."""
    one = np.zeros((32, 64), np.uint8)
    one[10:19, 31] = 220
    tensor = prepare_image(Image.fromarray(one, "L"), INK)
    assert tensor.shape == (1, 32, 64) and float(tensor.max()) > 0.5
    speck = np.zeros((32, 64), np.uint8)
    speck[10:13, 31] = 220
    with pytest.raises(DataError, match="no content"):
        prepare_image(Image.fromarray(speck, "L"), INK)


@pytest.mark.parametrize("shape,size", [((1, 100, 37), [32, 64]), ((3, 300, 501), [48, 48]), ((1, 7, 9), [32, 64]),
                                        ((3, 5, 900), [64, 32])])
def test_resize_and_centre_crop_are_torchvisions_bit_for_bit(shape, size):
    from torchvision.transforms.v2 import functional as reference

    from engine.data.image import center_crop, resize
    pixels = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resize(pixels, size), reference.resize(pixels, size, antialias=True))
    for crop in ([shape[1] // 2, shape[2]], [shape[1], max(1, shape[2] // 3)], [max(1, shape[1] - 1), shape[2] - 2]):
        assert torch.equal(center_crop(pixels, crop), reference.center_crop(pixels, crop))


def test_preparing_an_image_does_not_import_torchvision(tmp_path):
    """torchvision's import costs a cold query 1.5 s; the kernels it would call are torch's own."""
    import subprocess
    import sys
    digit_like().save(tmp_path / "one.png")
    code = ("import sys; from engine.config import ImageConfig; from engine.data.image import load_image; "
            f"load_image({str(tmp_path / 'one.png')!r}, ImageConfig()); "
            f"load_image({str(tmp_path / 'one.png')!r}, ImageConfig(height=48, width=48, channels=3, preprocess='photo')); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
