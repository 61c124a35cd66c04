"""The review sheet's viewing aids in headless Chromium, on a sheet written from small tables
(no workflow run): the "only flagged slices" filter inside a study, the lightbox that enlarges
an overlay (closed by Escape), problem codes shown in full on narrow cards, and a cine study's
slice without a position shown after its positions, in reading order.

The browser is Debian's ``chromium`` driven by Playwright; the tests skip where either is
absent (see tests/workflow/test_qc_browser.py for the whole QC loop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.qc.figures import reviewed_exclusions, sample_figures
from workflow_scripts.qc.overlays import encode_png, render_overlay
from workflow_scripts.qc.review_sheet import review_sheet_html

pytestmark = pytest.mark.browser

SIZE = 256  # the overlays' width and image height, as a real slice's
#: study -> {slice: its problem codes}; S1 has two flagged slices of six, S2 none of three.
STUDIES = {
    "S1": {1: [], 2: ["icontour_outside_ocontour", "mask_area_outlier"], 3: [], 4: [],
           5: ["mask_empty"], 6: []},
    "S2": {1: [], 2: [], 3: []},
}  # fmt: skip


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> Path:
    """A version folder's qc/ with the sheet and an overlay PNG per sample (each a different
    grey, so that the pictures differ)."""
    version = tmp_path_factory.mktemp("version")
    rows = []
    for study, slices in STUDIES.items():
        (version / "qc" / study).mkdir(parents=True)
        for number, codes in slices.items():
            grey = np.full((SIZE, SIZE), 40 * number, np.uint8)
            overlay = render_overlay(grey, {}, {}, [f"{study} slice {number}", *codes], bool(codes))
            (version / "qc" / study / f"{number:04d}.png").write_bytes(encode_png(overlay))
            rows.append({
                "study_id": study, "slice": number, "split": "train",
                "npz": f"slices/{study}/{number:04d}.npz", "qc": f"qc/{study}/{number:04d}.png",
                "mask_pixels": 1000 + number, "omask_pixels": None, "i_outside_o": None,
                "flags": ",".join(codes),
            })  # fmt: skip
        plot = render_overlay(np.zeros((320, 700), np.uint8), {}, {}, f"{study} plot")
        (version / "qc" / study / "mask_areas.png").write_bytes(encode_png(plot))
    figures = sample_figures(pd.DataFrame(rows))
    validation = pd.DataFrame({"study_id": [], "slice": [], "code": []})
    page = review_sheet_html("1.0.0", figures, validation, reviewed_exclusions(validation, []))
    (version / "qc" / "review.html").write_bytes(page)
    return version / "qc" / "review.html"


@pytest.fixture
def page(browser, sheet):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(sheet.as_uri())
    yield page
    page.close()
    assert errors == []


def shown_slices(page) -> list[int]:
    cards = page.locator(".grid .card[data-slice]").all()
    return [int(card.get_attribute("data-slice")) for card in cards if card.is_visible()]


def test_only_flagged_slices_narrows_the_study_and_stays_on_from_study_to_study(page):
    page.click("li[data-study=S1]")
    assert shown_slices(page) == [1, 2, 3, 4, 5, 6]
    assert page.locator("#shown").inner_text() == "6 of 6 slices shown"
    page.check("#only-flagged-slices")
    assert shown_slices(page) == [2, 5]
    assert page.locator("#shown").inner_text() == "2 of 6 slices shown"
    page.click("li[data-study=S2]")  # no flagged slice: the filter stays on and says so
    assert page.locator("#only-flagged-slices").is_checked()
    assert shown_slices(page) == []
    assert page.locator("#shown").inner_text() == "0 of 3 slices shown"
    page.uncheck("#only-flagged-slices")
    assert shown_slices(page) == [1, 2, 3]


def lightbox_image(page) -> dict:
    return page.locator("#lightbox-image").evaluate(
        """img => ({src: img.getAttribute("src"), natural: img.naturalWidth,
                    width: img.getBoundingClientRect().width,
                    bottom: img.getBoundingClientRect().bottom,
                    right: img.getBoundingClientRect().right})"""
    )


def test_an_overlay_opens_enlarged_and_escape_closes_it(page):
    page.click("li[data-study=S1]")
    opener = page.locator(".card[data-slice='2'] img")
    opener.click()
    lightbox = page.locator("#lightbox")
    lightbox.wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('lightbox-image').naturalWidth > 0")
    image = lightbox_image(page)
    assert image["src"] == "S1/0002.png" and image["natural"] == SIZE
    # 860 px of window less 90 for the caption, over the 256 + 28 px of the overlay: 2.7x
    assert image["width"] >= 2.5 * SIZE
    assert image["right"] <= 1280 and image["bottom"] <= 860  # the whole picture in view
    caption = page.locator("#lightbox-caption").inner_text()
    assert caption.split() == [
        "S1",
        "slice",
        "2",
        "icontour_outside_ocontour,",
        "mask_area_outlier",
    ]
    page.keyboard.press("Escape")
    lightbox.wait_for(state="hidden")
    assert opener.evaluate("img => img === document.activeElement")  # focus back on the overlay


def test_the_arrow_keys_step_through_the_slices_shown_and_a_click_closes(page):
    page.click("li[data-study=S1]")
    page.check("#only-flagged-slices")
    page.locator(".card[data-slice='2'] img").click()
    page.locator("#lightbox").wait_for(state="visible")
    page.keyboard.press("ArrowRight")
    assert lightbox_image(page)["src"] == "S1/0005.png"  # the next flagged slice, not 3
    page.keyboard.press("ArrowRight")
    assert lightbox_image(page)["src"] == "S1/0002.png"  # round again
    page.keyboard.press("ArrowLeft")
    assert lightbox_image(page)["src"] == "S1/0005.png"
    page.locator("#lightbox").click(position={"x": 5, "y": 5})  # the dark backdrop
    page.locator("#lightbox").wait_for(state="hidden")


def test_the_keyboard_opens_an_overlay_and_the_plot_enlarges_too(page):
    page.click("li[data-study=S1]")
    page.locator(".card[data-slice='1'] img").focus()
    page.keyboard.press("Enter")
    page.locator("#lightbox").wait_for(state="visible")
    assert lightbox_image(page)["src"] == "S1/0001.png"
    page.click("#lightbox-close")
    page.locator("#lightbox").wait_for(state="hidden")
    page.locator("img.plot").click()
    page.locator("#lightbox").wait_for(state="visible")
    assert lightbox_image(page)["src"] == "S1/mask_areas.png"
    page.keyboard.press("Escape")
    page.locator("#lightbox").wait_for(state="hidden")


def test_codes_show_in_full_on_a_narrow_card(browser, sheet):
    page = browser.new_page(viewport={"width": 480, "height": 800})  # one narrow column
    page.goto(sheet.as_uri())
    page.click("li[data-study=S1]")
    codes = page.locator(".card[data-slice='2'] .codes")
    assert codes.inner_text() == "icontour_outside_ocontour, mask_area_outlier"
    assert codes.evaluate("node => node.scrollWidth <= node.clientWidth")  # nothing cut off
    # and the overlay's own caption strip wraps: "S1 slice 2  icontour_outside_ocontour" fills
    # the first of its 14-pixel lines, "mask_area_outlier" the second (one line would be cut)
    height = page.locator(".card[data-slice='2'] img").evaluate("img => img.naturalHeight")
    assert height == SIZE + 2 * 14
    page.close()


#: A cine study: slice -> (position, position_mm, phase, trigger time, ED/ES, codes); slice 9
#: has no known position (a cine_* problem) and must still be shown, after the positions.
CINE = {
    5: (1, 10.0, 3, 600.0, "ED", []), 2: (0, 0.0, 1, 200.0, "ES", []),
    4: (0, 0.0, 3, 600.0, "ED", []), 6: (1, 10.0, 1, 200.0, "ES", ["mask_area_outlier"]),
    9: (None, None, None, None, "", []),
}  # fmt: skip


@pytest.fixture
def cine_page(browser, tmp_path):
    (tmp_path / "qc" / "C1").mkdir(parents=True)
    rows = []
    for number, (position, mm, phase, time, cardiac, codes) in CINE.items():
        grey = np.full((SIZE, SIZE), 25 * number, np.uint8)
        overlay = render_overlay(grey, {}, {}, [f"C1 slice {number}", *codes], bool(codes))
        (tmp_path / "qc" / "C1" / f"{number:04d}.png").write_bytes(encode_png(overlay))
        rows.append({
            "study_id": "C1", "slice": number, "split": "train",
            "npz": f"slices/C1/{number:04d}.npz", "qc": f"qc/C1/{number:04d}.png",
            "mask_pixels": 1000, "omask_pixels": None, "i_outside_o": None,
            "flags": ",".join(codes), "position": position, "position_mm": mm, "phase": phase,
            "trigger_time": time, "cardiac_phase": cardiac,
        })  # fmt: skip
    figures = sample_figures(pd.DataFrame(rows))
    validation = pd.DataFrame({"study_id": [], "slice": [], "code": []})
    page = review_sheet_html("1.0.0", figures, validation, reviewed_exclusions(validation, []))
    (tmp_path / "qc" / "review.html").write_bytes(page)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((tmp_path / "qc" / "review.html").as_uri())
    yield page
    page.close()
    assert errors == []


def test_a_slice_without_a_position_is_shown_below_the_positions(cine_page):
    page = cine_page
    assert page.locator("#shown").inner_text() == "5 of 5 slices shown"
    table = page.locator("table.cine").bounding_box()
    last = page.locator(".unplaced .card[data-slice='9']")
    assert last.bounding_box()["y"] >= table["y"] + table["height"]  # below every row
    assert page.locator(".unplaced h3").inner_text() == "Without a cine position or phase (1)"
    assert page.locator("#study h2 .measures").inner_text() == (
        "no EDV, ESV or EF (a version without measures.parquet)"
    )
    # reading order: position 0's ED (4) and ES (2), position 1's (5, 6), then slice 9
    page.locator(".card[data-slice='4'] img").click()
    page.locator("#lightbox").wait_for(state="visible")
    seen = [lightbox_image(page)["src"]]
    for _ in range(4):
        page.keyboard.press("ArrowRight")
        seen.append(lightbox_image(page)["src"])
    assert seen == [f"C1/{number:04d}.png" for number in (4, 2, 5, 6, 9)]
    caption = page.locator("#lightbox-caption").inner_text()
    assert caption == "C1 slice 9"
    page.keyboard.press("ArrowLeft")
    caption = page.locator("#lightbox-caption").inner_text()
    assert caption.startswith("C1 slice 6 · position 1 (10.0 mm) · ES · phase 1 · 200 ms")
    page.keyboard.press("Escape")
    # the flagged filter leaves position 1 with its flagged ES slice, and drops the last row
    page.check("#only-flagged-slices")
    assert page.locator("table.cine tr[data-position='0']").is_hidden()
    assert page.locator("table.cine tr[data-position='1']").is_visible()
    assert page.locator(".card[data-slice='5']").is_hidden()
    assert page.locator(".unplaced").is_hidden()
