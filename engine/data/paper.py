"""A number written on paper and photographed with a phone: what a user holds up to the studio.

From a light-on-dark number image: ink of some colour on off-white paper with margins, seen at an angle
(perspective), under uneven light with a shadow across it, slightly out of focus, with sensor noise, then
JPEG-compressed. The result goes through the same `prepare_image` as a dropped photo.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter


INKS = ((15, 15, 20), (25, 35, 120), (60, 60, 65), (110, 110, 115), (20, 60, 40), (120, 20, 25))


@dataclass(frozen=True)
class PhotoStyle:
    """Ranges of one way of photographing; the robustness benchmark uses harsher ones than training."""
    perspective: float = 0.10        # corner displacement, share of the side
    light_low: tuple = (0.55, 1.0)   # darkest end of the lighting gradient
    shadow: float = 0.5              # probability of a shadow edge across the page
    blur: float = 1.2                # Gaussian sigma at most, pixels of the photo
    noise: float = 0.04              # sensor noise std at most
    jpeg: tuple = (25, 90)           # JPEG quality range
    scale: int = 2                   # photo pixels per number pixel


TRAINING = PhotoStyle()
HARSH = PhotoStyle(perspective=0.16, light_low=(0.4, 0.7), shadow=1.0, blur=1.8, noise=0.06, jpeg=(15, 40))


def photograph(number: np.ndarray, rng: np.random.Generator, style: PhotoStyle = TRAINING) -> Image.Image:
    """(H, W) uint8 light-on-dark -> an RGB photo of it written on paper."""
    ink = np.asarray(Image.fromarray(number, "L").resize(
        (number.shape[1] * style.scale, number.shape[0] * style.scale), Image.BICUBIC), np.float32) / 255.0
    h, w = ink.shape
    pad_y, pad_x = (int(h * rng.uniform(0.2, 0.7)) for _ in range(2))
    ink = np.pad(ink, ((pad_y, int(h * rng.uniform(0.2, 0.7))), (pad_x, int(w * rng.uniform(0.15, 0.5)))))
    paper = np.array([rng.uniform(215, 252), rng.uniform(208, 248), rng.uniform(195, 242)], np.float32) / 255.0
    colour = np.array(INKS[int(rng.integers(len(INKS)))], np.float32) / 255.0
    strength = rng.uniform(0.75, 1.0) * ink[..., None]
    rgb = paper * (1 - strength) + colour * strength
    H, W = ink.shape
    # Light falls off across the page in some direction; a shadow edge may cross it.
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / W + np.sin(angle) * yy / H)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light = rng.uniform(*style.light_low) + (1 - style.light_low[0]) * ramp
    if rng.random() < style.shadow:
        a = rng.uniform(0, 2 * np.pi)
        edge = np.cos(a) * (xx - rng.uniform(0, W)) + np.sin(a) * (yy - rng.uniform(0, H))
        softness = rng.uniform(2, 12) * style.scale
        light = light * (1 - rng.uniform(0.2, 0.5) / (1 + np.exp(edge / softness)))
    rgb = np.clip(rgb * np.clip(light, 0, 1.2)[..., None], 0, 1)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    d = style.perspective
    corners = [[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]]
    moved = [[x + rng.uniform(-d, d) * W, y + rng.uniform(-d, d) * H] for x, y in corners]
    fill = [float(c) for c in paper * 0.9]
    from torchvision.transforms.v2 import functional   # here: its import takes 1.5 s that queries never need
    tensor = functional.perspective(tensor, corners, moved, fill=fill)
    noise = rng.normal(0, rng.uniform(0, style.noise), (1, *tensor.shape[1:])).astype(np.float32)
    tensor = tensor + torch.from_numpy(noise)  # sensor noise is mostly luminance
    photo = Image.fromarray((tensor.clamp(0, 1).numpy().transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8), "RGB")
    sigma = rng.uniform(0.05, style.blur)
    if sigma > 0.3:
        photo = photo.filter(ImageFilter.GaussianBlur(sigma))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=int(rng.integers(*style.jpeg)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
