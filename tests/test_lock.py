"""The lock file is what every machine installs: it must pin everything, satisfy pyproject.toml's
ranges, and be what this environment actually holds (a drifted .venv fails here, not at import)."""
from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
TORCH_TRIO = ("torch", "torchvision", "torchaudio")


def lock_entries(path: Path) -> list[tuple[Requirement, list[str]]]:
    """(requirement, hashes) per package entry; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = re.findall(r"--hash=(\S+)", line)
        spec = re.sub(r"--hash=\S+", "", line).strip()
        entries.append((Requirement(spec), hashes))
    return entries


def applicable(entries):
    return {canonicalize_name(req.name): req for req, _ in entries if req.marker is None or req.marker.evaluate()}


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def pinned_version(req: Requirement) -> Version:
    (spec,) = req.specifier
    return Version(spec.version)


def test_every_locked_package_is_pinned_exactly_with_hashes():
    for lock in (ROOT / "requirements.lock", ROOT / "requirements-dataset.lock", ROOT / "scripts" / "bootstrap.lock"):
        entries = lock_entries(lock)
        assert entries, f"{lock.name} is empty"
        for req, hashes in entries:
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"{lock.name}: {req} is not an exact pin"
            assert hashes and all(h.startswith("sha256:") for h in hashes), f"{lock.name}: {req.name} has no hash"


def test_the_lock_satisfies_every_range_in_pyproject():
    locked = applicable(lock_entries(ROOT / "requirements.lock"))
    for req in project_requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pinned_version(locked[name]), prereleases=True), (
            f"requirements.lock has {locked[name]} but pyproject.toml asks for {req}: run `make lock`")


def test_the_dataset_generator_installs_the_apps_versions_plus_its_own_tools():
    app = applicable(lock_entries(ROOT / "requirements.lock"))
    generator = applicable(lock_entries(ROOT / "requirements-dataset.lock"))
    assert set(app) <= set(generator)
    differ = [f"{name}: {app[name]} vs {generator[name]}" for name in app
              if pinned_version(app[name]) != pinned_version(generator[name])]
    assert not differ, "requirements-dataset.lock disagrees with requirements.lock (run `make lock`): " + "; ".join(differ)


def test_the_pytorch_trio_is_pinned_exactly_in_pyproject():
    requirements = {canonicalize_name(r.name): r for r in project_requirements()}
    for name in TORCH_TRIO:
        specs = list(requirements[name].specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
            f"{requirements[name]}: the PyTorch trio must be pinned to one exact release")


def test_this_environment_holds_exactly_the_locked_versions():
    drifted = []
    for name, req in applicable(lock_entries(ROOT / "requirements.lock")).items():
        try:
            have = Version(version(name)).public  # torch reports 2.11.0+cu130 for 2.11.0
        except PackageNotFoundError:
            drifted.append(f"{name}: not installed (lock: {pinned_version(req)})")
            continue
        if Version(have) != pinned_version(req):
            drifted.append(f"{name}: {have} installed, lock says {pinned_version(req)}")
    assert not drifted, "the environment differs from requirements.lock (run `make setup`): " + "; ".join(drifted)
