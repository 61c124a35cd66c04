"""QC pictures: the display window, overlay geometry, contact sheets and their encoders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from workflow_scripts.qc.overlays import (
    CONTOUR_COLOURS,
    caption_lines,
    contact_sheet,
    encode_jpeg,
    encode_png,
    render_overlay,
    window_image,
)

ROWS, COLUMNS = 40, 30


def test_a_dicom_window_maps_center_minus_half_width_to_black_and_plus_to_white():
    pixels = np.array([[-10, 0, 50, 100, 200, 300]], dtype=np.int16)
    # center 100, width 200: 0 -> 0 and 200 -> 255, linear between, clipped outside
    expected = [[0, 0, 63, 127, 255, 255]]  # 50 * 255 / 200 = 63.75, 100 * 255 / 200 = 127.5
    np.testing.assert_array_equal(window_image(pixels, (100.0, 200.0)), expected)


def test_without_a_window_the_percentile_range_is_stretched():
    pixels = np.arange(101, dtype=np.int16).reshape(1, 101)
    grey = window_image(pixels, None, (1.0, 99.0))  # the 1st and 99th percentiles: 1 and 99
    assert grey.dtype == np.uint8 and grey.shape == (1, 101)
    assert list(grey[0, [0, 1, 50, 99, 100]]) == [0, 0, 127, 255, 255]  # 49 * 255 / 98 = 127.5
    full = window_image(pixels, None, (0.0, 100.0))
    assert list(full[0, [0, 50, 100]]) == [0, 127, 255]


def test_rescaled_float_pixels_are_windowed_too():
    pixels = np.array([[-1.5, 0.25, 1.5]], dtype=np.float32)
    np.testing.assert_array_equal(window_image(pixels, (0.0, 2.0)), [[0, 159, 255]])  # 1.25/2


@pytest.mark.parametrize("window", [None, (5.0, 0.0)])
def test_a_flat_image_or_an_empty_window_does_not_divide_by_zero(window):
    grey = window_image(np.full((4, 4), 5, dtype=np.int16), window)
    np.testing.assert_array_equal(grey, np.zeros((4, 4)))


def rgb(overlay: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(caption strip, image area) of an overlay as RGB arrays."""
    pixels = np.asarray(overlay.convert("RGB")).astype(int)
    strip = overlay.height - ROWS
    return pixels[:strip], pixels[strip:]


def test_overlay_is_a_palette_image_one_slice_wide_with_a_strip_above():
    overlay = render_overlay(np.zeros((ROWS, COLUMNS), np.uint8), {}, {}, "")
    assert overlay.mode == "P"
    assert overlay.width == COLUMNS and overlay.height > ROWS


def test_overlay_pixel_below_the_strip_is_the_image_pixel():
    grey = np.zeros((ROWS, COLUMNS), np.uint8)
    grey[5, 9] = 255
    grey[33, 0] = 200
    _, image = rgb(render_overlay(grey, {}, {}, ""))
    assert np.argwhere(image.sum(axis=2) > 0).tolist() == [[5, 9], [33, 0]]


def test_grey_levels_are_kept_to_within_the_128_level_palette():
    grey = np.tile(np.arange(256, dtype=np.uint8)[:, None], (1, 4))  # 256 rows
    overlay = render_overlay(grey, {}, {}, "")
    image = np.asarray(overlay.convert("RGB")).astype(int)[overlay.height - 256 :]
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    assert np.abs(image[:, 0, 0] - np.arange(256)).max() <= 2  # 256 levels shown as 128


def test_mask_pixels_are_tinted_in_their_kinds_colour_and_nothing_else():
    grey = np.full((ROWS, COLUMNS), 128, np.uint8)
    inner = np.zeros((ROWS, COLUMNS), bool)
    outer = np.zeros((ROWS, COLUMNS), bool)
    inner[20, 3] = True
    outer[20, 3] = outer[21, 3] = True
    _, image = rgb(render_overlay(grey, {"i": inner, "o": outer}, {}, ""))
    untinted = image[0, 0]
    assert untinted[0] == untinted[1] == untinted[2]
    changed = np.argwhere((image != untinted).any(axis=2)).tolist()
    assert changed == [[20, 3], [21, 3]]
    red, green = image[20, 3], image[21, 3]  # i over o where both cover a pixel
    assert red[0] > untinted[0] and red[1] == red[2] < untinted[1]
    assert green[1] > untinted[1] and green[0] == green[2] < untinted[0]
    # a 30% tint of the colour over the grey (128 -> 125 at 48 tint levels): hand figures
    for pixel, colour in ((red, CONTOUR_COLOURS["i"]), (green, CONTOUR_COLOURS["o"])):
        expected = 0.7 * (23 * 255 / 47) + 0.3 * np.asarray(colour)
        assert np.abs(pixel - expected).max() <= 1


def test_contours_are_outlined_on_the_pixels_they_pass_through():
    grey = np.zeros((ROWS, COLUMNS), np.uint8)
    square = np.array([(5.0, 10.0), (15.0, 10.0), (15.0, 20.0), (5.0, 20.0)])  # (x, y)
    _, image = rgb(render_overlay(grey, {}, {"i": square}, ""))
    outline = (image == CONTOUR_COLOURS["i"]).all(axis=2)
    assert outline[10, 5:16].all() and outline[20, 5:16].all()  # rows y = 10 and 20
    assert outline[10:21, 5].all() and outline[10:21, 15].all()  # columns x = 5 and 15
    assert outline.sum() == 40  # the 4 sides of 11 pixels, corners shared
    assert not outline[15, 10]


@pytest.mark.parametrize("flagged", [False, True])
def test_the_caption_strip_is_amber_when_flagged_and_carries_the_caption(flagged):
    grey = np.zeros((ROWS, COLUMNS), np.uint8)
    blank, _ = rgb(render_overlay(grey, {}, {}, "", flagged=flagged))
    background = blank[0, -1]
    assert (blank == background).all()
    if flagged:
        assert background[0] > background[1] > background[2]  # amber
    else:
        assert background.tolist() == [0, 0, 0]
    captioned, image = rgb(render_overlay(grey, {}, {}, "S1 slice 2", flagged=flagged))
    assert (captioned != background).any(axis=2).sum() > 10  # text drawn in the strip
    assert (image == 0).all()  # and nothing below it


def tile(width: int, height: int, value: int = 255) -> Image.Image:
    return Image.new("RGB", (width, height), (value, value, value))


def test_contact_sheet_is_a_grid_with_as_many_columns_as_asked_or_tiles_given():
    seven = contact_sheet([(tile(64, 78), False)] * 7, columns=3, tile_size=128)
    three = contact_sheet([(tile(64, 78), False)] * 3, columns=3, tile_size=128)
    two = contact_sheet([(tile(64, 78), False)] * 2, columns=3, tile_size=128)
    assert seven.mode == "RGB"
    assert seven.width == three.width
    pitch = (seven.height - three.height) / 2  # three rows against one
    assert three.width - two.width == pitch  # three columns against two
    assert 128 < pitch <= 128 + 16  # a tile of 128 and a narrow gutter
    assert contact_sheet([(tile(64, 78), False)] * 2, columns=10, tile_size=128).size == two.size


def test_tiles_that_fit_are_pasted_unscaled_and_larger_ones_shrunk_to_the_tile():
    sheet = np.asarray(contact_sheet([(tile(64, 78), False)] * 5, columns=2, tile_size=128))
    assert (sheet == 255).all(axis=2).sum() == 5 * 64 * 78
    big = np.asarray(contact_sheet([(tile(300, 200), False)], columns=2, tile_size=100))
    rows, columns = np.nonzero((big == 255).all(axis=2))
    assert columns.max() - columns.min() + 1 == 100
    assert rows.max() - rows.min() + 1 in (66, 67)  # 200 * 100 / 300


def test_flagged_tiles_get_a_frame_the_others_do_not():
    sheet = np.asarray(contact_sheet([(tile(40, 40, 0), True), (tile(40, 40, 0), False)], 2))
    rows, columns = np.nonzero(sheet.sum(axis=2) > 0)
    assert rows.size > 0
    # the frame hugs the first tile only: everything coloured lies left of the second column
    assert columns.max() < sheet.shape[1] // 2
    colour = sheet[rows[0], columns[0]]
    assert colour[0] > colour[1] > colour[2]  # amber


def test_an_empty_contact_sheet_says_so():
    sheet = contact_sheet([], columns=6, tile_size=100)
    assert sheet.mode == "RGB"
    assert sheet.width == 2 * 100 and sheet.height < 100
    assert (np.asarray(sheet) == 255).any()  # white text on black


def test_png_encoding_is_deterministic_and_lossless():
    grey = np.arange(ROWS * COLUMNS, dtype=np.uint8).reshape(ROWS, COLUMNS)
    mask = grey > 100
    overlay = render_overlay(grey, {"i": mask}, {}, "S slice 1")
    data = encode_png(overlay)
    assert data == encode_png(render_overlay(grey, {"i": mask}, {}, "S slice 1"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "P"
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(overlay))
    np.testing.assert_array_equal(
        np.asarray(decoded.convert("RGB")), np.asarray(overlay.convert("RGB"))
    )
    assert encode_png(render_overlay(grey, {}, {}, "S slice 1")) != data


def test_jpeg_encoding_is_deterministic():
    sheet = contact_sheet([(tile(64, 78, 90), True)] * 3, columns=2)
    data = encode_jpeg(sheet)
    assert data == encode_jpeg(contact_sheet([(tile(64, 78, 90), True)] * 3, columns=2))
    assert data[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(data)).size == sheet.size


def test_a_caption_that_fits_stays_one_line_two_spaces_apart():
    assert caption_lines(["S1 slice 2", "mask_empty"], 256) == ["S1 slice 2  mask_empty"]
    assert caption_lines([], 256) == [""]


def text_columns(strip: np.ndarray) -> np.ndarray:
    """The columns of a caption strip (RGB rows) where text was drawn."""
    return np.flatnonzero((strip != strip[0, -1]).any(axis=2).any(axis=0))


def test_a_long_caption_wraps_so_that_every_code_shows_in_full():
    # The real case the review showed cut: a 256-pixel slice of SCD0000401 with two codes.
    parts = ["SCD0000401 slice 40", "icontour_outside_ocontour", "mask_area_outlier"]
    grey = np.zeros((ROWS, 256), np.uint8)
    drawn = ImageDraw.Draw(Image.new("P", (1, 1)))  # measured as drawn on a palette image
    one_line = drawn.textlength("  ".join(parts), font=ImageFont.load_default(size=11))
    assert one_line > 256 - 4  # on one line it would be cut at the image's edge
    lines = caption_lines(parts, 256)
    assert lines == ["SCD0000401 slice 40", "icontour_outside_ocontour", "mask_area_outlier"]
    overlay = render_overlay(grey, {}, {}, parts, flagged=True)
    pixels = np.asarray(overlay.convert("RGB")).astype(int)
    for number in range(3):  # each line's text ends inside the image: nothing is cut off
        assert 0 < text_columns(pixels[14 * number : 14 * (number + 1)]).max() < 254
    short = caption_lines(["SCD0000401 slice 40", "mask_empty", "mask_too_large"], 256)
    assert short == ["SCD0000401 slice 40  mask_empty", "mask_too_large"]


def test_a_wrapped_caption_makes_the_strip_taller_and_keeps_the_pixel_geometry():
    grey = np.zeros((ROWS, 256), np.uint8)
    grey[5, 9] = 255
    one = render_overlay(grey, {}, {}, ["SCD0000401 slice 40"], flagged=True)
    two = render_overlay(
        grey, {}, {}, ["SCD0000401 slice 40", "icontour_outside_ocontour"], flagged=True
    )
    assert (one.height, two.height) == (ROWS + 14, ROWS + 28)
    pixels = np.asarray(two.convert("RGB")).astype(int)
    strip, image = pixels[:28], pixels[28:]
    assert len(text_columns(strip[14:])) > 10  # text on the second line
    assert np.argwhere(image.sum(axis=2) > 0).tolist() == [[5, 9]]


def test_on_a_narrow_image_a_part_wider_than_a_line_breaks_after_spaces_and_underscores():
    parts = ["PHANTOM0001 slice 4", "mask_area_outlier", "mask_empty"]
    lines = caption_lines(parts, 96)
    assert lines == ["PHANTOM0001", "slice 4", "mask_area_", "outlier", "mask_empty"]
    overlay = render_overlay(np.zeros((ROWS, 96), np.uint8), {}, {}, parts, flagged=True)
    pixels = np.asarray(overlay.convert("RGB")).astype(int)
    assert overlay.height == ROWS + 5 * 14
    for number in range(5):  # every line ends inside the image
        assert 0 < text_columns(pixels[14 * number : 14 * (number + 1)]).max() < 94
    # a broken part starts a line of its own; a part that fits joins the line before it
    assert caption_lines(["S slice 4", "icontour_outside_ocontour", "mask_empty"], 96) == [
        "S slice 4", "icontour_", "outside_", "ocontour", "mask_empty",
    ]  # fmt: skip
    assert caption_lines(["S1 slice 2", "a", "b"], 96) == ["S1 slice 2  a  b"]
