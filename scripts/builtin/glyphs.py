"""Digits as people print and draw them: font glyph atlases and single-stroke (Hershey) digit shapes.

Fonts come from the Debian font packages scripts/setup_dataset.sh installs (all free licences: OFL, GPL
with the font exception, LPPL, Apache, Bitstream Vera, public domain). Whole families are held out:
held-out families (and their clones) never appear in training. Only the training fonts' digits
ship (`glyphs.npz`); held-out images are rendered here with the same composer the training uses.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.data.printed import GLYPH_SIZE

# No digits (symbol or tofu fonts), outline-only or stencil digits a person would not read as numbers.
EXCLUDED_FAMILIES = {"D050000L", "Balker", "Marked Fool", "Swift", "Winks", "flatline", "progenisis",
                     "Wargames", "femkeklaver", "Standard Symbols PS", "DejaVu Math TeX Gyre"}
# Held-out families, grouped with their clones (P052 and TeX Gyre Pagella are both Palatino; Dustismo and
# Dustismo Roman, Berenika and Klaudia are one designer's pairs).
HELDOUT_FAMILIES = {"Humor Sans", "Comic Neue", "Fira Code", "Cantarell", "P052", "TeX Gyre Pagella", "Berenika",
                    "Klaudia", "Domestic Manners", "Tomson Talks", "Dustismo", "Dustismo Roman", "It wasn't me"}
# Handwriting families of the correction styles (resources/builtin/styles.npz, scripts/make_font_atlases.py): never
# in the built-in set, neither trained on nor among its held-out fonts; the generator skips them when installed.
STYLE_PACKAGES = "fonts-bwht fonts-dkg-handwriting fonts-ecolier-court fonts-rufscript"
STYLE_FAMILIES = {"Because We Build", "Because We Connect", "Because We Create", "Because We Learn",
                  "Because We Mentor", "Because We Organize", "DkgHandwriting", "Ecolier_court", "Rufscript"}
# Handwriting families of the handwriting atlas (resources/builtin/handwriting.npz, scripts/make_font_atlases.py),
# by group: a group is one hand (a calligrapher's several faces, one font's weights). Whole groups are held out
# for `nlmm bench robustness`; the generator of the built-in set skips every family of these packages.
HANDWRITING_PACKAGES = ("fonts-aoyagi-kouzan-t fonts-aoyagi-soseki fonts-kouzan-mouhitsu fonts-dancingscript "
                        "fonts-sjfonts fonts-havana fonts-isabella fonts-joscelyn fonts-kaushanscript fonts-klee "
                        "fonts-kristi fonts-leckerli-one fonts-lobster fonts-nanum-extra fonts-navilu "
                        "fonts-tlwg-purisa-otf fonts-seto fonts-yozvox-yozfont fonts-yusei-magic fonts-kiloji "
                        "fonts-cabinsketch")
HANDWRITING_GROUPS = {
    "train": {"Kouzan": ("AoyagiKouzanFontT", "KouzanBrushFont", "KouzanBrushFontGyousyo", "KouzanBrushFontSousyo"),
              "Soseki": ("AoyagiSosekiFont2",), "Steve": ("Steve",), "Havana": ("Havana",),
              "Isabella": ("Isabella",), "Joscelyn": ("Joscelyn",), "Kristi": ("Kristi",),
              "Leckerli One": ("Leckerli One",), "Lobster Two": ("Lobster Two",),
              "Nanum Brush Script": ("Nanum Brush Script",), "Navilu": ("Navilu",), "Seto": ("SetoFont",),
              "Yozfont": ("YOzN",), "Yusei Magic": ("Yusei Magic",), "Cabin Sketch": ("Cabin Sketch",)},
    "heldout": {"Klee One": ("Klee One",), "Nanum Pen Script": ("Nanum Pen Script",),
                "Kaushan Script": ("Kaushan Script",), "Purisa": ("Purisa",), "Delphine": ("Delphine",),
                "Kiloji": ("kiloji", "kiloji - B", "kiloji - D", "kiloji - P"), "Dancing Script": ("Dancing Script",)},
}
HANDWRITING_FAMILIES = {family: (split, group) for split, groups in HANDWRITING_GROUPS.items()
                        for group, families in groups.items() for family in families}
# What else those packages install: other faces of one hand (the Yozfont kana variants, SetoFont-ex),
# the Nanum packages' printed faces, a second name of Cabin Sketch, a font without digits (TypoScript).
HANDWRITING_SIBLING_PREFIXES = ("YOz", "Nanum", "SetoFont", "kiloji", "CabinSketch", "TypoScript")


def collection(family: str) -> str:
    """Which atlas a font family belongs to: "styles", "handwriting" (or one of its packages' others,
    "none") or "builtin"."""
    if family in STYLE_FAMILIES:
        return "styles"
    if family in HANDWRITING_FAMILIES:
        return "handwriting"
    return "none" if family.startswith(HANDWRITING_SIBLING_PREFIXES) else "builtin"


# Hershey single-stroke families: the "drawn with a mouse or a finger" style. Held out: cursive, timesi.
MIN_STROKE = 1.3  # pixels at GLYPH_SIZE
STROKE_SPLITS = {"train": ("futural", "rowmans", "scripts", "greek", "timesr", "futuram"),
                 "heldout": ("cursive", "timesi")}


@dataclass(frozen=True)
class Font:
    family: str
    style: str
    path: str

    @property
    def name(self) -> str:
        return f"{self.family} {self.style}"


def font_split(family: str) -> str:
    return "heldout" if family in HELDOUT_FAMILIES else "train"


def installed_fonts(styles: bool = False, kind: str | None = None) -> list[Font]:
    """One file per (family, style), OpenType/TrueType before Type 1, sorted by name: the built-in set's
    fonts, with `styles` the correction styles' (STYLE_FAMILIES) only, or those of `collection` `kind`."""
    kind = kind or ("styles" if styles else "builtin")
    out = subprocess.run(["fc-list", "--format=%{family[0]}|%{style[0]}|%{file}\n"], capture_output=True,
                         text=True, check=True).stdout
    chosen: dict[tuple[str, str], str] = {}
    for line in sorted(set(out.splitlines())):
        family, style, path = line.split("|")
        if family in EXCLUDED_FAMILIES or not path.lower().endswith((".ttf", ".otf", ".t1", ".pfb")):
            continue
        if collection(family) != kind:
            continue
        key = (family, style)
        if key not in chosen or (chosen[key].endswith((".t1", ".pfb")) and not path.endswith((".t1", ".pfb"))):
            chosen[key] = path
    return [Font(f, s, p) for (f, s), p in sorted(chosen.items())]


def digit_glyphs(font: Font, size: int = GLYPH_SIZE, render_px: int = 96) -> np.ndarray:
    """The ten digits of a font, (10, size, size) uint8, ink light on dark. Every digit is scaled by the
    same factor (the font's digit height -> `size`), keeps its place on the baseline and is centred
    horizontally, so a composed number keeps the font's proportions."""
    face = ImageFont.truetype(font.path, render_px)
    canvas = (render_px * 3, render_px * 2)

    def render(stroke: int) -> list[np.ndarray]:
        out = []
        for digit in "0123456789":
            image = Image.new("L", canvas, 0)
            ImageDraw.Draw(image).text((render_px // 2, render_px // 3), digit, font=face, fill=255,
                                       stroke_width=stroke, stroke_fill=255)
            out.append(np.asarray(image))
        return out

    inks = render(0)
    # Hairline styles (Thin, ExtraLight) would vanish at GLYPH_SIZE: thicken them to a minimum weight.
    width = stroke_width(np.concatenate(inks, axis=1) > 127)
    if width < MIN_STROKE * render_px / size:
        inks = render(int(np.ceil((MIN_STROKE * render_px / size - width) / 2)))
    rows = np.flatnonzero(np.max([ink.max(axis=1) for ink in inks], axis=0) > 40)
    top, bottom = rows.min(), rows.max() + 1
    scale = (size - 2) / (bottom - top)
    out = np.zeros((10, size, size), np.uint8)
    for d, ink in enumerate(inks):
        cols = np.flatnonzero(ink[top:bottom].max(axis=0) > 40)
        piece = Image.fromarray(ink[top:bottom, cols.min(): cols.max() + 1])
        width = max(1, min(size, int(round(piece.width * scale))))
        piece = np.asarray(piece.resize((width, size - 2), Image.LANCZOS))
        left = (size - width) // 2
        out[d, 1: size - 1, left: left + width] = piece
    return out


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width of a binary drawing: twice its area over its outline length."""
    inner = ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    outline = int(ink.sum()) - int(inner.sum())
    return 2.0 * float(ink.sum()) / max(outline, 1)


def hershey_digits(family: str) -> list[list[list[tuple[float, float]]]]:
    """Per digit, its strokes as point lists in a unit box (y down, digit height 1, centred on x = 0)."""
    from HersheyFonts import HersheyFonts

    fonts = HersheyFonts()
    fonts.load_default_font(family)
    fonts.normalize_rendering(1.0)
    out = []
    for digit in "0123456789":
        strokes = [list(s) for s in fonts.strokes_for_text(digit)]
        points = np.array([p for s in strokes for p in s], dtype=np.float64)
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        height = max(y1 - y0, 1e-6)
        out.append([[(round((x - (x0 + x1) / 2) / height, 4), round((y1 - y) / height, 4)) for x, y in s]
                    for s in strokes])
    return out
