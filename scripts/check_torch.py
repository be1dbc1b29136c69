"""Checks that the PyTorch trio imports together and says which package does not.

torchaudio and torchvision are built against one exact libtorch; a mismatch only shows when their
compiled parts load (an undefined symbol), so each is imported and exercised here, right after set-up.
"""
from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version


def installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main() -> int:
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - whatever broke, the user needs one line naming it
        print(f"setup: torch {installed('torch')} does not import: {err}", file=sys.stderr)
        return 1
    failures = []
    probes = {
        # Each probe calls into the package's compiled library, where a mismatch shows.
        "torchvision": lambda m: m.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5),
        "torchaudio": lambda m: m.functional.resample(torch.zeros(160), 16000, 8000),
    }
    for name, probe in probes.items():
        try:
            probe(importlib.import_module(name))
        except Exception as err:  # noqa: BLE001
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            failures.append(f"{name} {installed(name)} does not work beside torch {torch.__version__}: {first}")
    for line in failures:
        print(f"setup: {line}", file=sys.stderr)
    if failures:
        print("setup: reinstall from the lock (rm -rf .venv && make setup), or pin a matching trio in "
              "pyproject.toml and regenerate the lock (make lock)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
