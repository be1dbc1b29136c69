"""Export the per-modality encoders (input -> joint embedding) as TorchScript or ONNX.

Each exported encoder takes fixed-size padded inputs plus a mask, because the chunked delta rule's
chunk loop is unrolled at export time:
  text  (B, max_tokens) int64 token ids, (B, max_tokens) bool mask
  image (B, C, H, W) float in [0, 1]
  audio (B, n_mels, max_frames) float log-mel, (B, max_frames) bool mask
Every export is made in memory, reloaded and checked against the PyTorch model (max abs difference <=
1e-4), and only then written, atomically (temp file, fsync, rename): a full disk or a kill never leaves a
half-written encoder behind, and a failed write is an OSError naming the file.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from engine.vocabulary import MODALITIES
from engine.config import NLMMConfig, atomic_write_bytes
from engine.data.audio import LogMel
from engine.models.nlmm import NLMM

TOLERANCE = 1e-4


class EncoderExport(nn.Module):
    def __init__(self, model: NLMM, modality: str):
        super().__init__()
        self.model, self.modality = model, modality

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode(self.modality, inputs, mask)


class ImageExport(EncoderExport):
    def forward(self, images: torch.Tensor) -> torch.Tensor:  # images have no padding
        return self.model.encode("image", images, None)


def example_inputs(cfg: NLMMConfig, modality: str, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    if modality == "text":
        tokens = torch.randint(2, cfg.text.vocab_size, (batch, cfg.text.max_tokens), generator=g)
        tokens[0, cfg.text.max_tokens // 2:] = 0  # one padded row
        return tokens, tokens != 0
    if modality == "image":
        image = cfg.image
        return (torch.rand(batch, image.channels, image.height, image.width, generator=g),)
    frames = LogMel(cfg.audio).n_frames(int(cfg.audio.max_seconds * cfg.audio.sample_rate))
    mask = torch.ones(batch, frames, dtype=torch.bool)
    mask[0, frames // 3:] = False
    return torch.randn(batch, cfg.audio.n_mels, frames, generator=g), mask


def export_encoders(model: NLMM, cfg: NLMMConfig, fmt: str, out: str | Path) -> dict[str, dict]:
    """Writes <out>/<modality>.{pt,onnx}; returns {modality: {"path", "max_abs_diff"}}."""
    if fmt not in ("torchscript", "onnx"):
        raise ValueError(f"format must be torchscript or onnx, got '{fmt}'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    report = {}
    with warnings.catch_warnings():
        # The tracer warns of every Python branch on a shape; the chunk loop is unrolled on purpose, and
        # each export is checked against the model below.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        for modality in MODALITIES:
            report[modality] = _export_one(model, cfg, modality, fmt, out)
    return report


def _export_one(model: NLMM, cfg: NLMMConfig, modality: str, fmt: str, out: Path) -> dict:
    """One encoder made in memory, checked against the model, then written atomically."""
    wrapper = (ImageExport(model, "image") if modality == "image" else EncoderExport(model, modality)).eval()
    inputs = example_inputs(cfg, modality)
    check = example_inputs(cfg, modality, seed=1)
    with torch.no_grad():
        expected = wrapper(*check)
    if fmt == "torchscript":
        path = out / f"{modality}.pt"
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        data = buffer.getvalue()
        with torch.no_grad():
            got = torch.jit.load(io.BytesIO(data))(*check)
    else:
        path = out / f"{modality}.onnx"
        data, got = _onnx_roundtrip(wrapper, inputs, check)
    diff = float((got - expected).abs().max())
    if diff > TOLERANCE:
        raise RuntimeError(f"{path}: exported {modality} encoder differs from the model by {diff:.2e}")
    atomic_write_bytes(path, data)
    return {"path": str(path), "max_abs_diff": diff}


def _onnx_roundtrip(wrapper, inputs, check) -> tuple[bytes, torch.Tensor]:
    """-> (the ONNX model, what onnxruntime computes from `check` with it)."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx, onnxscript and onnxruntime packages "
                           "(pip install onnx onnxscript onnxruntime)") from None
    names = ["inputs", "mask"][: len(inputs)]
    dynamic = {name: {0: "batch"} for name in names}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(wrapper, inputs, buffer, input_names=names, output_names=["embedding"],
                          dynamic_axes=dynamic, dynamo=False, opset_version=17)
    data = buffer.getvalue()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = {name: tensor.numpy() for name, tensor in zip(names, check)}
    return data, torch.from_numpy(session.run(None, feed)[0])
