"""A training step of this project's NLMM beside the seed's NL-MM, side by side in one process.

The seed is `modules/nl_mm` of the public repository intrinsicD/DeepLearning2 (not shipped here: give a
checkout, or a bare git directory, of that repository). Both models are built at about the same size from
the same shape settings (d_model, heads, depth per modality, FFN ratio, vocabulary, three CMS levels) and
trained on identical inputs: the same images, log-mels and token ids, each model with its own objective
(this project: contrastive pairs; the seed: its decoders' reconstruction losses) and its own optimisers
(the seed's NLScheduler steps its levels by their chunk sizes). Steps are timed in alternating rounds so
that both see the same machine state; the fp32 `torch.mm` peak is measured in the same process (best of 5).

    python scripts/compare_seed.py /path/to/DeepLearning2 [--batch 64] [--d-model 128] [--depth 2] [--json]

Prints samples/s of each (median over rounds), the ratio, and each step's achieved GFLOP/s as a share
of the peak, with what ran (CPU, threads, precision, load average).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.bench.kernels import matmul_peak_gflops  # noqa: E402
from engine.bench.machine import describe, load_average, machine_line  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.models.nlmm import NLMM  # noqa: E402
from engine.training.step import TrainStep, synthetic_batch  # noqa: E402


def seed_package(repo: Path, into: Path) -> Path:
    """A folder holding the seed's `modules/nl_mm` package: the checkout itself, or a copy taken from a
    bare git directory with `git archive`."""
    if (repo / "modules" / "nl_mm" / "__init__.py").is_file():
        return repo
    archive = subprocess.run(["git", f"--git-dir={repo}", "archive", "HEAD", "modules/nl_mm"], capture_output=True)
    if archive.returncode:
        sys.exit(f"compare_seed: {repo}: neither a checkout holding modules/nl_mm nor a git directory "
                 f"({archive.stderr.decode(errors='replace').strip()})")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def our_step(args, device):
    cfg = load_config("tiny")
    cfg.d_model, cfg.n_heads, cfg.ffn_mult = args.d_model, args.heads, args.ffn_mult
    cfg.depth.text = cfg.depth.image = cfg.depth.audio = args.depth
    cfg.precision, cfg.data.batch_size = "fp32", args.batch
    torch.manual_seed(0)
    model = NLMM(cfg).to(device)
    step = TrainStep(model, cfg, device)
    batch, labels = synthetic_batch(cfg, args.batch, device, seconds=args.seconds, text_tokens=args.tokens)
    return cfg, model, (lambda: step(batch, labels)), (lambda: step.forward_backward(batch, labels)), batch


def seed_step(args, cfg, batch, device):
    from nl_mm import NLMM as SeedNLMM, apply_nlmm_init
    levels = [{"name": level.name, "chunk_size": level.chunk_size, "lr": level.lr,
               "optimizer": "dmgd" if level.optimizer == "dmgd" else "adamw"} for level in cfg.cms_levels]
    seed_cfg = {"d_model": args.d_model, "n_heads": args.heads, "ffn_mult": args.ffn_mult, "L_mem": cfg.L_mem,
                "depth": {"text": args.depth, "image": args.depth, "audio": args.depth}, "cms_levels": levels,
                "optimizer": {"adamw": {"lr": 3e-4, "weight_decay": 0.01},
                              "dmgd": {"lr": 1e-3, "beta": 0.9, "nonlinearity": "nsqrt"}},
                "ttt": {"enable": False, "eta": 1e-3, "max_steps": 2, "adapter_rank": 16},
                "max_position_embeddings": 1024, "vocab_size": cfg.text.vocab_size,
                "image_channels": cfg.image.channels, "patch_size": cfg.image.patch_size,
                "image_resolution": cfg.image.height, "audio_channels": 1, "audio_mel_bins": cfg.audio.n_mels}
    torch.manual_seed(0)
    model = SeedNLMM(seed_cfg).to(device)
    apply_nlmm_init(model, seed_cfg["depth"], "encoder")
    scheduler = model.configure_scheduler(seed_cfg)
    model.train()
    image = batch["image"]
    # the same inputs; its decoders' targets are made from them (a square image, the mean mel frame)
    inputs = {"text": batch["text"], "text_target": batch["text"].roll(-1, dims=1),
              "image": image, "image_target": image[..., : image.shape[-2]],
              "audio": batch["audio"][:, None], "audio_target": batch["audio"].mean(-1)}
    counter = {"step": 0}

    def forward_backward():
        outputs, _ = model(inputs)
        loss = sum(outputs.values())
        loss.backward()
        return loss

    def step():
        forward_backward()
        scheduler.step_all(counter["step"])
        counter["step"] += 1
    return model, step, forward_backward


def flops_of(forward_backward) -> float:
    with FlopCounterMode(display=False) as counter:
        forward_backward()
    return counter.get_total_flops()


def timed(step, repeats: int) -> float:
    """Median seconds of `repeats` steps."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seed_repo", type=Path, help="a checkout or bare git directory of intrinsicD/DeepLearning2")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--depth", type=int, default=2, help="blocks per modality")
    parser.add_argument("--ffn-mult", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=8, help="text tokens per caption")
    parser.add_argument("--seconds", type=float, default=1.5, help="audio seconds per clip")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="nlmm-seed-") as tmp:
        # nl_mm as a top-level package: the repository's own `modules/__init__.py` imports unrelated projects
        sys.path.insert(0, str(seed_package(args.seed_repo.resolve(), Path(tmp)) / "modules"))
        cfg, ours, our_train, our_fb, batch = our_step(args, device)
        seed, seed_train, seed_fb = seed_step(args, cfg, batch, device)
        sizes = {"ours": sum(p.numel() for p in ours.parameters()), "seed": sum(p.numel() for p in seed.parameters())}
        flops = {"ours": flops_of(our_fb), "seed": flops_of(seed_fb)}
        steps = {"ours": our_train, "seed": seed_train}
        for step in steps.values():   # warm up: first calls allocate and pick kernels
            step()
            step()
        rounds = {"ours": [], "seed": []}
        for _ in range(args.rounds):
            for name, step in steps.items():
                rounds[name].append(timed(step, args.steps))
        peak = max(matmul_peak_gflops(device, 2048, 1) for _ in range(5))
    seconds = {name: statistics.median(times) for name, times in rounds.items()}
    report = {"batch": args.batch, "parameters": sizes, "gflop_per_step": {k: v / 1e9 for k, v in flops.items()},
              "step_ms": {k: 1e3 * v for k, v in seconds.items()},
              "samples_per_s": {k: args.batch / v for k, v in seconds.items()},
              "speedup": seconds["seed"] / seconds["ours"],
              "fp32_mm_peak_gflops": peak,
              "share_of_peak": {k: flops[k] / seconds[k] / 1e9 / peak for k in seconds},
              "rounds_ms": {k: [round(1e3 * t, 1) for t in v] for k, v in rounds.items()},
              "ran": describe(device) | {"precision": "fp32", "load_average_before": load_before,
                                         "load_average_after": load_average()}}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"Machine: {machine_line(report['ran'])}")
    print(f"batch {args.batch}, fp32, identical inputs; fp32 torch.mm peak {peak:.0f} GFLOP/s")
    for name in ("ours", "seed"):
        print(f"  {name:>4}: {sizes[name] / 1e6:6.2f} M parameters, {report['gflop_per_step'][name]:6.2f} GFLOP/step, "
              f"{report['step_ms'][name]:7.1f} ms/step, {report['samples_per_s'][name]:7.1f} samples/s, "
              f"{100 * report['share_of_peak'][name]:4.1f} % of peak")
    print(f"  this project's step is {report['speedup']:.2f}x the seed's samples/s (target: 4x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
