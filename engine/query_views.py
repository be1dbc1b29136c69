"""An image query is embedded as the mean of shifted views of it (test-time augmentation).

Where the ink crop lands decides which 8-pixel patches a stroke falls in; averaging the embeddings of
the image moved by up to 2 pixels each way makes the answer depend less on that. The views were chosen
on the validation split (docs/demo-model.md). Galleries keep one view per image: they are built far more often than
they would gain.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SHIFTS = tuple((dx, dy) for dx in (-2, 0, 2) for dy in (-2, 0, 2))  # pixels, right and down


def shifted_views(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B * len(SHIFTS), C, H, W), each image's views together; what moves out is lost and
    the dark background moves in. Whole-pixel moves by padding and slicing: exact in any precision (an
    affine warp under bf16 autocast sampled the wrong pixels)."""
    m = max(max(abs(dx), abs(dy)) for dx, dy in SHIFTS)
    h, w = images.shape[-2:]
    padded = F.pad(images, (m, m, m, m))
    views = [padded[..., m - dy:m - dy + h, m - dx:m - dx + w] for dx, dy in SHIFTS]
    return torch.stack(views, dim=1).flatten(0, 1)


def pool_views(embeddings: torch.Tensor) -> torch.Tensor:
    """(B * len(SHIFTS), D) view embeddings -> (B, D) unit-length means."""
    per_image = F.normalize(embeddings.float(), dim=-1).unflatten(0, (-1, len(SHIFTS)))
    return F.normalize(per_image.mean(dim=1), dim=-1)


def encode_image_queries(model, images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images -> (B, D) query embeddings, under the caller's autocast."""
    return pool_views(model.encode("image", shifted_views(images)))
