"""The review sheet in headless Chromium with a decision on an o-contour alone: it is carried
forward with its contour, counted, and downloaded with the ``contour`` column, which the
workflow reads back as the same decisions (skipped without Chromium or Playwright)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workflow_scripts.qc.exclusions import read_exclusions
from workflow_scripts.qc.figures import reviewed_exclusions, sample_figures
from workflow_scripts.qc.review_sheet import review_sheet_html

pytestmark = pytest.mark.browser

OCONTOUR = "contourfiles/O1/o-contours/IM-0001-0004-ocontour-manual.txt"
ICONTOUR = "contourfiles/O1/i-contours/IM-0001-0006-icontour-manual.txt"


@pytest.fixture
def page(tmp_path, browser):
    index = pd.DataFrame(
        [{"study_id": "S1", "slice": n, "split": "val", "npz": f"slices/S1/{n:04d}.npz",
          "qc": f"qc/S1/{n:04d}.png", "mask_pixels": 100, "omask_pixels": None,
          "i_outside_o": None, "flags": ""} for n in (2, 4)]
    )  # fmt: skip
    validation = pd.DataFrame(
        [{"study_id": "S1", "slice": 4, "code": "excluded_by_review", "contour": OCONTOUR},
         {"study_id": "S1", "slice": 6, "code": "excluded_by_review", "contour": ICONTOUR}]
    )  # fmt: skip
    decisions = [
        {"study_id": "S1", "slice": 4, "reason": "o copied", "reviewer": "Ann",
         "date": "2024-05-02", "contour": "o"},
        {"study_id": "S1", "slice": 6, "reason": "wrong slice", "reviewer": "Ann",
         "date": "2024-05-02"},
    ]  # fmt: skip
    table = reviewed_exclusions(validation, decisions)
    sheet = tmp_path / "qc" / "review.html"
    sheet.parent.mkdir()
    sheet.write_bytes(review_sheet_html("2.0.0", sample_figures(index), validation, table))
    page = browser.new_page()
    page.goto(sheet.as_uri())
    yield page
    page.close()


def download(page, folder: Path) -> Path:
    with page.expect_download() as event:
        page.click("#download")
    path = folder / "exclusions.csv"
    event.value.save_as(path)
    return path


def test_an_o_contour_decision_is_carried_forward_and_downloaded_with_its_contour(page, tmp_path):
    assert page.locator("#count").inner_text() == "2 slices marked to exclude"
    # Slice 4 stays a sample: its card is not marked excluded by the o-contour decision.
    page.click("li[data-study=S1]")
    assert not page.locator(".card[data-slice='4'] input.exclude").is_checked()
    path = download(page, tmp_path)
    assert path.read_text().splitlines() == [
        "study_id,slice,reason,reviewer,date,contour",
        "S1,4,o copied,Ann,2024-05-02,o",
        "S1,6,wrong slice,Ann,2024-05-02,",
    ]
    decisions = [d.as_params() for d in read_exclusions(path)]
    assert [(d["slice"], d.get("contour", "")) for d in decisions] == [(4, "o"), (6, "")]
    # Marking slice 4 whole adds a decision beside the o-contour's, and loading the file
    # again changes nothing (decisions are keyed by study, slice and contour).
    card = page.locator(".card[data-slice='4']")
    card.locator("input.reason").fill("whole slice bad")
    card.locator("input.exclude").check()
    assert page.locator("#count").inner_text() == "3 slices marked to exclude"
    page.set_input_files("#load", str(path))
    page.wait_for_function("document.getElementById('status').textContent.includes('loaded')")
    assert page.locator("#count").inner_text() == "3 slices marked to exclude"
