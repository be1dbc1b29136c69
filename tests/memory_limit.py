"""Run a snippet in a fresh Python whose memory is capped (RLIMIT_DATA: heap and private mappings) once
its imports are done, so that a test of "this stays bounded" fails with an allocation error instead of
swapping the machine."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CAP = """
import resource
data = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmData:"))
resource.setrlimit(resource.RLIMIT_DATA, (data + {extra}, data + {extra}))
"""


def run_capped(imports: str, code: str, extra_bytes: int, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `imports`, then `code` with at most `extra_bytes` more memory; returns the finished process."""
    program = imports + CAP.format(extra=int(extra_bytes)) + code
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
