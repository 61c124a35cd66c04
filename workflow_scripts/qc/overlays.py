"""QC pictures: one overlay per sample, and a contact sheet per study.

An overlay shows the slice in a display window (the DICOM's own window when it has one, else the
1st to 99th percentile), each mask tinted, each contour's polygon outlined, and a caption strip
naming the study and slice (and the problem codes when the slice was flagged). Pixel geometry is
unchanged: overlay pixel (r, c) is pixel (r, c) of the sample's stored image, below the caption
strip; in a resampled build that is the slice on the common grid, with its contours mapped onto
that grid (the caption ends with the grid's spacing).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "CONTOUR_COLOURS",
    "caption_lines",
    "contact_sheet",
    "encode_jpeg",
    "encode_png",
    "render_overlay",
    "window_image",
]

#: RGB colour per contour kind: i (blood pool) red, o (outer wall) green.
CONTOUR_COLOURS = {"i": (255, 64, 64), "o": (64, 220, 64)}
_TINT_ALPHA = 0.30
_CAPTION_HEIGHT = 14
_FLAG_COLOUR = (255, 190, 0)

# Overlays are palette images: PNG-encoding one byte per pixel is ~10x faster than RGB, which
# otherwise dominates a slice's build time. The fixed palette holds 128 grey levels, 48 tinted
# levels per contour kind, and the drawing colours.
_GREYS = 128
_TINTS = 48
_TINT_BASE = {"i": _GREYS, "o": _GREYS + _TINTS}
_OUTLINE = {"i": _GREYS + 2 * _TINTS, "o": _GREYS + 2 * _TINTS + 1}
_BLACK, _WHITE, _AMBER = _GREYS + 2 * _TINTS + 2, _GREYS + 2 * _TINTS + 3, _GREYS + 2 * _TINTS + 4


def _palette() -> list[int]:
    colours = [(round(k * 255 / (_GREYS - 1)),) * 3 for k in range(_GREYS)]
    for kind in ("i", "o"):
        tint = np.asarray(CONTOUR_COLOURS[kind], dtype=np.float64)
        for k in range(_TINTS):
            grey = k * 255 / (_TINTS - 1)
            colours.append(
                tuple(round(float(v)) for v in (1 - _TINT_ALPHA) * grey + _TINT_ALPHA * tint)
            )
    colours += [
        CONTOUR_COLOURS["i"],
        CONTOUR_COLOURS["o"],
        (0, 0, 0),
        (255, 255, 255),
        _FLAG_COLOUR,
    ]
    return [channel for colour in colours for channel in colour]


_PALETTE = _palette()


def window_image(
    pixels: np.ndarray,
    window: tuple[float, float] | None,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> np.ndarray:
    """Map pixel values to uint8 grey levels for display.

    Uses ``window`` = (center, width) as DICOM defines it when given, else stretches the
    ``percentiles`` range of the image to 0..255. Returns a uint8 array of the input's shape.
    """
    values = pixels.astype(np.float32)
    if window is not None:
        center, width = window
        low, high = center - width / 2.0, center + width / 2.0
    else:
        low, high = (float(v) for v in np.percentile(values, percentiles))
    if high <= low:
        high = low + 1.0
    scaled = (values - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def render_overlay(
    grey: np.ndarray,
    masks: Mapping[str, np.ndarray],
    contours: Mapping[str, np.ndarray],
    caption: str | Sequence[str],
    flagged: bool = False,
) -> Image.Image:
    """Draw masks and contours over a windowed slice.

    Args:
        grey: (rows, columns) uint8 display image (see :func:`window_image`).
        masks: contour kind (``"i"``, ``"o"``) -> bool mask of the same shape; each is tinted
            in its kind's colour.
        contours: contour kind -> (N, 2) vertices as (x, y) = (column, row) pixel coordinates;
            each is drawn as a closed one-pixel outline.
        caption: text for the strip above the image: one text, or its parts (study and
            slice, then each problem code, ...), written on one line two spaces apart while
            they fit the image's width; a part that does not fit starts a new line, so that
            every code shows in full. A single part wider than the image is cut at its edge.
        flagged: draw the caption strip in amber, so flagged slices stand out.

    Returns:
        a palette ("P") image of size (columns, rows + caption strip): 128 grey levels, tints
        at 48 levels. The strip is 14 pixels high per line of caption.
    """
    indices = (grey >> 1).astype(np.uint8)  # 256 -> 128 grey levels
    tint_levels = (grey.astype(np.uint16) * (_TINTS - 1) // 255).astype(np.uint8)
    # Tint outer first so the blood-pool colour stays on top where both cover a pixel.
    for kind in sorted(masks, reverse=True):
        mask = masks[kind]
        indices[mask] = _TINT_BASE[kind] + tint_levels[mask]
    rows, columns = grey.shape
    lines = caption_lines([caption] if isinstance(caption, str) else caption, columns)
    strip = _CAPTION_HEIGHT * len(lines)
    canvas = Image.new("P", (columns, rows + strip), _AMBER if flagged else _BLACK)
    canvas.putpalette(_PALETTE)
    canvas.paste(Image.fromarray(indices, "L"), (0, strip))
    draw = ImageDraw.Draw(canvas)
    for kind in sorted(contours, reverse=True):
        points = contours[kind] + (0.0, strip)
        outline = [tuple(p) for p in points] + [tuple(points[0])]
        draw.line(outline, fill=_OUTLINE[kind], width=1)
    for number, line in enumerate(lines):
        draw.text((2, 1 + _CAPTION_HEIGHT * number), line, fill=_BLACK if flagged else _WHITE,
                  font=_font())  # fmt: skip
    return canvas


def caption_lines(parts: Sequence[str], width: int) -> list[str]:
    """The lines of an overlay's caption strip for an image ``width`` pixels wide: the parts
    two spaces apart, a new line wherever the next part would run past the width (less the
    2-pixel margin each side). A part wider than a whole line (on a narrow image) starts a
    line and is broken after its spaces and underscores (``PHANTOM0001`` / ``slice 4``,
    ``mask_area_`` / ``outlier``); a caption that fits is drawn on one line, as it always
    was. Widths are measured as the text is drawn on the palette image (FreeType's mode "1",
    without anti-aliasing, whose glyphs are wider than the default mode's). Always at least
    one line (empty for no caption)."""
    room = width - 4

    def fits(text: str) -> bool:
        return _font().getlength(text, mode="1") <= room

    lines = [""]
    for part in parts:
        pieces = [part] if fits(part) else _pieces(part, fits)
        for position, piece in enumerate(pieces):
            joined = f"{lines[-1]}  {piece}" if lines[-1] else piece
            if lines[-1] and (position > 0 or len(pieces) > 1 or not fits(joined)):
                lines.append(piece)
            else:
                lines[-1] = joined
    return lines


def _pieces(part: str, fits) -> list[str]:
    """``part`` cut after spaces and underscores into the fewest pieces that each fit (a
    piece with nowhere left to cut may still not fit); a cut space is dropped."""
    words = re.findall(r"[^ _]*(?:_|(?: |$))", part)
    pieces = [words[0]]
    for word in [w for w in words[1:] if w]:
        if fits((pieces[-1] + word).rstrip(" ")):
            pieces[-1] += word
        else:
            pieces.append(word)
    return [piece.rstrip(" ") for piece in pieces]


def contact_sheet(
    tiles: Sequence[tuple[Image.Image, bool]], columns: int, tile_size: int = 128
) -> Image.Image:
    """Arrange overlays in a grid for a study at a glance.

    ``tiles`` are (overlay, flagged); each overlay is shrunk to fit ``tile_size`` pixels
    and flagged tiles get an amber frame. An empty sequence gives a small sheet saying so.
    """
    if not tiles:
        sheet = Image.new("RGB", (tile_size * 2, 24), 0)
        ImageDraw.Draw(sheet).text((4, 6), "no samples", fill=(255, 255, 255), font=_font())
        return sheet
    columns = max(1, min(columns, len(tiles)))
    grid_rows = -(-len(tiles) // columns)
    pad = 4
    sheet = Image.new(
        "RGB", (columns * (tile_size + pad) + pad, grid_rows * (tile_size + pad) + pad)
    )
    for position, (overlay, flagged) in enumerate(tiles):
        thumb = overlay.convert("RGB")
        thumb.thumbnail((tile_size, tile_size), Image.Resampling.BILINEAR)
        row, column = divmod(position, columns)
        x, y = pad + column * (tile_size + pad), pad + row * (tile_size + pad)
        if flagged:
            ImageDraw.Draw(sheet).rectangle(
                (x - 2, y - 2, x + thumb.width + 1, y + thumb.height + 1),
                outline=_FLAG_COLOUR,
                width=2,
            )
        sheet.paste(thumb, (x, y))
    return sheet


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of ``image``; deterministic (PIL writes no timestamp) and quick to encode."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_jpeg(image: Image.Image) -> bytes:
    """JPEG bytes of an RGB ``image`` (contact sheets: ~20x faster to encode than PNG)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


_FONT = None


def _font():
    global _FONT
    if _FONT is None:
        _FONT = ImageFont.load_default(size=11)
    return _FONT
