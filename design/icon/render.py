"""Renders the toolbar/store icons from the SVG sources (pip install cairosvg).

The PNGs are committed; run this only after changing an SVG:
    python3 design/icon/render.py
"""
from pathlib import Path

import cairosvg

here = Path(__file__).parent
for size, source in [(16, "icon-small.svg"), (32, "icon.svg"), (48, "icon.svg"), (128, "icon.svg")]:
    cairosvg.svg2png(
        url=str(here / source),
        write_to=str(here.parent.parent / "icons" / f"icon-{size}.png"),
        output_width=size,
        output_height=size,
    )
