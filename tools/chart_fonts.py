"""Write the report's chart fonts and their widths: DejaVu Sans and Sans Bold, subset.

The charts are drawn without matplotlib; their text is laid out with these widths and the PNG is
rasterised with these fonts, so a chart looks the same on every machine, fonts installed or not.
DejaVu is free to copy and change (adapter/report/fonts/LICENSE_DEJAVU). Run again only to change
the characters kept; it needs fontTools and DejaVu's TTF files (matplotlib carries both):

    .venv/bin/python tools/chart_fonts.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib
from fontTools import subset
from fontTools.ttLib import TTFont

KEPT = [
    *range(0x20, 0x7F),  # ASCII
    *range(0xA0, 0x180),  # Latin-1 and Latin Extended-A: accented names in labels
    *range(0x2010, 0x2028),  # dashes, quotes, bullet, ellipsis
    *range(0x2030, 0x203B),
    0x2122,
    *range(0x2190, 0x2194),  # arrows
    0x2212,  # minus
    0x2264,  # less-than or equal
    0x2265,  # greater-than or equal: the guides' labels
]
FONTS = {"sans": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf"}
OUT = Path(__file__).resolve().parent.parent / "adapter" / "report" / "fonts"


def main() -> None:
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    widths: dict[str, object] = {}
    for name, file in FONTS.items():
        options = subset.Options()
        options.hinting = False
        options.desubroutinize = True
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = TTFont(source / file)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=KEPT)
        subsetter.subset(font)
        font.save(OUT / file)
        font = TTFont(OUT / file)
        cmap, hmtx = font.getBestCmap(), font["hmtx"]
        em = font["head"].unitsPerEm
        widths[name] = {
            "advance": {str(cp): hmtx[glyph][0] / em for cp, glyph in sorted(cmap.items())},
            "missing": hmtx[".notdef"][0] / em,
        }
    widths["ascent"] = round(font["hhea"].ascent / em, 4)
    widths["descent"] = round(-font["hhea"].descent / em, 4)
    (OUT / "metrics.json").write_text(json.dumps(widths, separators=(",", ":")) + "\n")
    shutil.copy(source / "LICENSE_DEJAVU", OUT / "LICENSE_DEJAVU")


if __name__ == "__main__":
    main()
