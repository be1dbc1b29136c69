"""Run a snippet in a fresh Python whose memory is capped (RLIMIT_DATA: heap and private mappings), so
that a test of "this stays bounded" fails with an allocation error instead of swapping the machine."""
from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS_BYTES = 1 << 30  # what importing torch, torchaudio and the engine maps (about 0.9 GB here)


def run_capped(code: str, extra_bytes: int = 1 << 30, timeout: float = 120) -> subprocess.CompletedProcess:
    """`code` under a cap of the imports plus `extra_bytes`; returns the finished process."""
    limit = IMPORTS_BYTES + extra_bytes

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap)
