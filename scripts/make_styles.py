"""Writes resources/builtin/styles.npz: the digit glyphs of handwriting font families that the built-in set
never uses (not in training, not among its held-out fonts), for `nlmm bench corrections` to draw fresh
numbers in a handwriting the model never saw. Installs the Debian font packages when run as root.

    .venv/bin/python scripts/make_styles.py          # deterministic for the same fonts and Pillow
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data.printed import STYLES_FILE  # noqa: E402
from scripts.builtin import glyphs  # noqa: E402


def main() -> int:
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *glyphs.STYLE_PACKAGES.split()],
                       check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    fonts = glyphs.installed_fonts(styles=True)
    atlases, names = [], []
    for font in fonts:
        atlas = glyphs.digit_glyphs(font)
        if (atlas.reshape(10, -1).max(axis=1) < 128).any():   # a digit the font draws empty or faint
            print(f"skipped {font.name}: a digit has no ink")
            continue
        atlases.append(atlas)
        names.append(font.name)
    if not atlases:
        print(f"no fonts of {sorted(glyphs.STYLE_FAMILIES)} installed: apt-get install {glyphs.STYLE_PACKAGES}")
        return 1
    out = ROOT / "resources" / "builtin" / STYLES_FILE
    np.savez_compressed(out, atlas=np.stack(atlases), names=np.array(names))
    print(f"{out}: {len(names)} styles: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
