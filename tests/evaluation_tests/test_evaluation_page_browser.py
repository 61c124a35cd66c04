"""The evaluation page in a real browser (Debian's Chromium driven by Playwright; skipped where
either is absent): the summary table, one section per study with its volume curve and its worst
contours, every overlay loaded. With ``LV_DATASET_SCREENSHOTS=DIR`` it saves the screenshot
docs/evaluation-page.png into DIR."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from evaluation_helpers import build_cine_version
from loader import DatasetIndex, save_prediction
from loader.cli import main
from loader.sample_file import encode_sample, read_sample

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """3 studies: SCD0000001 as a whole cine (a smooth curve), the others as samples with a
    missed contour, a shifted one and dilations."""
    tmp = tmp_path_factory.mktemp("page")
    version = build_cine_version(tmp / "out")
    index = DatasetIndex(version.root)
    predictions = tmp / "pred"
    for row in range(len(index)):
        study, number = str(index.study_id[row]), int(index.slice[row])
        if study == "SCD0000001":
            continue
        arrays = version.masks[(study, number)]
        mask = ndimage.binary_dilation(arrays["mask"])
        if (study, number) == ("SCD0000002", 20):
            mask = np.zeros_like(mask)
        if (study, number) == ("SCD0000003", 8):
            mask = np.roll(arrays["mask"], 6, axis=1)
        omask = arrays.get("omask")
        save_prediction(predictions, index, row, mask=mask, omask=omask)
    cine = np.zeros((4, 20, 64, 64), dtype=bool)
    rows, cols = np.mgrid[:64, :64]
    for p in range(4):
        for t in range(20):
            radius = 13.5 - 2 * p + 2.5 * np.cos(2 * np.pi * (t - 19) / 20)
            cine[p, t] = (rows - 32) ** 2 + (cols - 32) ** 2 < radius**2
    np.save(predictions / "SCD0000001.npy", cine)
    out = tmp / "evaluation"
    assert main(["evaluate", str(version.root), str(predictions), "--out", str(out)]) == 1
    # SCD0000001's o-contours have no prediction (a cine holds no omask): refused; score the
    # i-contours alone by leaving omask out everywhere
    for path in predictions.glob("*/*.npz"):
        arrays = read_sample(path)
        path.write_bytes(encode_sample({"mask": arrays["mask"]}))
    assert main(["evaluate", str(version.root), str(predictions), "--out", str(out)]) == 0
    return out


def test_the_page_shows_the_summary_curves_and_worst_contours(evaluated, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto((evaluated / "evaluation.html").as_uri())
    header = page.locator("table tr").first.inner_text()
    assert "good (APD < 5 mm)" in header
    assert page.locator("section.study").count() == 3
    assert page.locator("svg.curve").count() == 3
    # the cine's curve is a line over 20 phases; the sample studies have ED and ES points
    cine_curve = page.locator("section#SCD0000001 svg.curve")
    assert cine_curve.locator("polyline").count() == 1
    assert cine_curve.locator("circle").count() == 20
    assert page.locator("section#SCD0000002 svg.curve circle").count() == 2
    assert "from the predicted curve" in page.locator("section#SCD0000001").inner_text()
    # worst first: the missed contour, then the shifted one
    captions = page.locator("section#SCD0000002 figcaption").all_inner_texts()
    assert captions[0].startswith("slice 20 i-contour") and "not detected" in captions[0]
    shifted = page.locator("section#SCD0000003 figcaption").first.inner_text()
    assert shifted.startswith("slice 8 i-contour") and "APD" in shifted
    images = page.locator("figure img")
    assert images.count() == 9
    for image in images.all():
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
    page.screenshot(path=tmp_path / "evaluation-page.png", full_page=True)
    folder = os.environ.get("LV_DATASET_SCREENSHOTS")
    if folder:
        shutil.copyfile(tmp_path / "evaluation-page.png", Path(folder) / "evaluation-page.png")
    page.close()
