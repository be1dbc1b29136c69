"""Export the per-modality encoders (input -> joint embedding) as TorchScript or ONNX.

Each exported encoder takes fixed-size padded inputs plus a mask, because the chunked delta rule's
chunk loop is unrolled at export time:
  text  (B, max_tokens) int64 token ids, (B, max_tokens) bool mask
  image (B, C, H, W) float in [0, 1]
  audio (B, n_mels, max_frames) float log-mel, (B, max_frames) bool mask
Every export is reloaded and checked against the PyTorch model (max abs difference <= 1e-4).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engine.config import NLMMConfig
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
    for modality in ("text", "image", "audio"):
        wrapper = (ImageExport(model, "image") if modality == "image" else EncoderExport(model, modality)).eval()
        inputs = example_inputs(cfg, modality)
        check = example_inputs(cfg, modality, seed=1)
        with torch.no_grad():
            expected = wrapper(*check)
        if fmt == "torchscript":
            path = out / f"{modality}.pt"
            with torch.no_grad():
                traced = torch.jit.trace(wrapper, inputs, check_trace=False)
            torch.jit.save(traced, str(path))
            with torch.no_grad():
                got = torch.jit.load(str(path))(*check)
        else:
            path = out / f"{modality}.onnx"
            got = _onnx_roundtrip(wrapper, inputs, check, path)
        diff = float((got - expected).abs().max())
        if diff > TOLERANCE:
            raise RuntimeError(f"{path}: exported {modality} encoder differs from the model by {diff:.2e}")
        report[modality] = {"path": str(path), "max_abs_diff": diff}
    return report


def _onnx_roundtrip(wrapper, inputs, check, path: Path) -> torch.Tensor:
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError("ONNX export needs the onnx, onnxscript and onnxruntime packages "
                           "(pip install onnx onnxscript onnxruntime)") from None
    names = ["inputs", "mask"][: len(inputs)]
    dynamic = {name: {0: "batch"} for name in names}
    with torch.no_grad():
        torch.onnx.export(wrapper, inputs, str(path), input_names=names, output_names=["embedding"],
                          dynamic_axes=dynamic, dynamo=False, opset_version=17)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: tensor.numpy() for name, tensor in zip(names, check)}
    return torch.from_numpy(session.run(None, feed)[0])
