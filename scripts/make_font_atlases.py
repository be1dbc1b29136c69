"""Writes the font atlases the built-in set's generator does not: resources/builtin/styles.npz, the digits of
handwriting families that nothing trains on or is measured on but the corrections (`nlmm bench corrections`,
`nlmm bench teach`: a user's own handwriting), and resources/builtin/handwriting.npz, the digits of handwriting
families by group, split into the groups training draws numbers from and the groups `nlmm bench robustness`
holds out. Installs the Debian font packages when run as root.

    .venv/bin/python scripts/make_font_atlases.py    # deterministic for the same fonts and Pillow
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data.printed import HANDWRITING_FILE, STYLES_FILE  # noqa: E402
from scripts.builtin import glyphs  # noqa: E402


def atlases(kind: str) -> tuple[list[np.ndarray], list[glyphs.Font]]:
    """The digit glyphs of every installed font of collection `kind` that draws all ten digits."""
    out, fonts = [], []
    for font in glyphs.installed_fonts(kind=kind):
        atlas = glyphs.digit_glyphs(font)
        if (atlas.reshape(10, -1).max(axis=1) < 128).any():   # a digit the font draws empty or faint
            print(f"skipped {font.name}: a digit has no ink")
            continue
        out.append(atlas)
        fonts.append(font)
    return out, fonts


def write_styles(out: Path) -> bool:
    found, fonts = atlases("styles")
    if not found:
        print(f"no fonts of {sorted(glyphs.STYLE_FAMILIES)} installed: apt-get install {glyphs.STYLE_PACKAGES}")
        return False
    np.savez_compressed(out, atlas=np.stack(found), names=np.array([f.name for f in fonts]))
    print(f"{out}: {len(fonts)} styles: {', '.join(f.name for f in fonts)}")
    return True


def write_handwriting(out: Path) -> bool:
    found, fonts = atlases("handwriting")
    arrays = {}
    for split, groups in glyphs.HANDWRITING_GROUPS.items():
        chosen = [i for i, f in enumerate(fonts) if glyphs.HANDWRITING_FAMILIES[f.family][0] == split]
        missing = set(groups) - {glyphs.HANDWRITING_FAMILIES[fonts[i].family][1] for i in chosen}
        if missing:
            print(f"handwriting groups not installed: {sorted(missing)}: apt-get install {glyphs.HANDWRITING_PACKAGES}")
            return False
        arrays[split] = np.stack([found[i] for i in chosen])
        arrays[f"{split}_names"] = np.array([fonts[i].name for i in chosen])
        arrays[f"{split}_groups"] = np.array([glyphs.HANDWRITING_FAMILIES[fonts[i].family][1] for i in chosen])
    np.savez_compressed(out, **arrays)
    for split, groups in glyphs.HANDWRITING_GROUPS.items():
        print(f"{out}: {split}: {len(arrays[split])} fonts of {len(groups)} groups: {', '.join(groups)}")
    return True


def main() -> int:
    if os.geteuid() == 0:
        packages = f"{glyphs.STYLE_PACKAGES} {glyphs.HANDWRITING_PACKAGES}".split()
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                       check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    folder = ROOT / "resources" / "builtin"
    ok = write_styles(folder / STYLES_FILE)
    return 0 if write_handwriting(folder / HANDWRITING_FILE) and ok else 1


if __name__ == "__main__":
    sys.exit(main())
