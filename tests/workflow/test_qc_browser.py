"""The QC loop in a real browser: build, open the report, review in the review sheet (its
overlays by slice position, ED beside ES), download exclusions.csv, build the next version
with it.

Headless Chromium is Debian's ``chromium`` package driven by Playwright (never a browser of
Playwright's own); the tests skip where either is absent. With ``LV_DATASET_SCREENSHOTS=DIR``
they also save the README's screenshots into DIR (``docs/`` in the repository).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_workflow
from dataset_checks import check_accounting
from loader.manifest import read_whole_manifest
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = [pytest.mark.workflow, pytest.mark.browser]

REVIEWER = "Test Reviewer"
DECISIONS = [  # (study, slice, reason): the flagged slice, and one that looks fine
    ("PHANTOM0001", 8, "contour drawn on the wrong structure"),
    ("PHANTOM0002", 6, "mask incomplete, or cut off"),
]


def screenshot(page, name: str, tmp: Path) -> None:
    page.screenshot(path=tmp / name)
    folder = os.environ.get("LV_DATASET_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp / name, Path(folder) / name)


@pytest.fixture(scope="module")
def first_version(tmp_path_factory):
    """3 phantom studies of 3 positions, with PHANTOM0001's slice 8 i-contour (ED, between
    ED's 4 and 12) shrunk to a 2x2 square (a mask area outlier), built as version 1.0.0 with
    o-contours, and its report."""
    workdir = tmp_path_factory.mktemp("qc-loop")
    raw = write_phantom(workdir / "raw", PhantomSpec.with_defaults(studies=3, slices=12, size=96))
    tiny = raw / "contourfiles/PH-HF-1/i-contours/IM-0001-0008-icontour-manual.txt"
    tiny.write_text("47.0 47.0\n49.0 47.0\n49.0 49.0\n47.0 49.0\n")
    config = ("--config", f"data_dir={raw}", "out_dir=out", "contours=[i,o]")
    run_workflow(workdir, *config)
    run_workflow(workdir, *config, "--report", "report.html")
    return workdir, raw


def click_result_row(page, text: str) -> None:
    """Show the report result whose row holds ``text`` (its 'eye' button)."""
    page.locator("tr", has_text=text).locator("a[iconname=eye]").click()


def test_report_lists_flagged_slices_by_study_and_slice_and_their_images_load(
    first_version, browser, tmp_path
):
    workdir, _ = first_version
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto((workdir / "report.html").as_uri())
    page.get_by_text("Flagged slices", exact=True).click()
    rows = page.locator("tr", has_text="PHANTOM")
    assert rows.all_inner_texts() == ["PHANTOM0001\t0008\tmask_area_outlier\t"]
    click_result_row(page, "PHANTOM0001")
    overlay = page.locator("img[src^='data:image/png']")
    overlay.wait_for()
    assert overlay.evaluate("img => img.complete && img.naturalWidth") == 96
    assert str(workdir) not in page.locator("body").inner_text()

    page.get_by_text("Results", exact=True).click()
    page.get_by_text("Label figures", exact=True).click()
    labels = page.locator("tr", has_text="distribution").all_inner_texts()
    assert [label.strip() for label in labels] == [
        "distribution of i-mask area / study median",
        "distribution of i-mask areas",
    ]

    page.get_by_text("Results", exact=True).click()
    page.get_by_text("Studies", exact=True).click()
    index = pd.read_parquet(workdir / "out/1.0.0/index.parquet")
    splits = dict(zip(index["study_id"], index["split"], strict=True))
    assert page.locator("tr", has_text="PHANTOM").all_inner_texts() == [
        f"PHANTOM000{n}\t{splits.get(f'PHANTOM000{n}', 'none')}\t" for n in (1, 2, 3, 4)
    ]  # labelled by study and split; PHANTOM0004 is listed but absent: no samples
    click_result_row(page, "PHANTOM0001")
    entry = page.frame_locator("iframe")
    entry.locator("text=flagged slices").wait_for()
    widths = entry.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 2 and all(widths)  # the mask-area plot and the contact sheet
    screenshot(page, "qc-report.png", tmp_path)
    page.close()


def box(locator) -> dict:
    """The element's box in the sheet's scrolled area (x, y, width, height, CSS pixels; y
    counted from the top of ``main``'s content, so that it does not depend on the scroll)."""
    return locator.evaluate(
        """node => { const r = node.getBoundingClientRect();
                     const top = document.querySelector("main").scrollTop;
                     return {x: r.x, y: r.y + top, width: r.width, height: r.height}; }"""
    )


def test_review_sheet_shows_each_positions_ED_and_ES_side_by_side(first_version, browser, tmp_path):
    workdir, _ = first_version
    version = workdir / "out/1.0.0"
    index = pd.read_parquet(version / "index.parquet")
    study = index[index["study_id"] == "PHANTOM0001"].sort_values(["position", "slice"])
    measures = pd.read_parquet(version / "measures.parquet").set_index("study_id")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((version / "qc/review.html").as_uri())
    page.click("li[data-study=PHANTOM0001]")

    # The header: the study's EDV, ESV and EF as measures.parquet has them.
    row = measures.loc["PHANTOM0001"]
    assert page.locator("#study h2 .measures").inner_text() == (
        f"EDV {row['edv_ml']:.1f} mL · ESV {row['esv_ml']:.1f} mL · EF {row['ef_percent']:.1f}%"
    )
    # One row per position, base (position 0) at the top; each holds the position's ED and
    # ES overlays (the index's), ED's left of ES's, at the same height, not overlapping.
    rows = page.locator("table.cine tbody tr")
    positions = sorted(set(study["position"]))
    assert [int(r.get_attribute("data-position")) for r in rows.all()] == positions
    tops = [box(r)["y"] for r in rows.all()]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    headings = {
        phase: box(page.locator(f"table.cine thead th[data-cardiac-phase={phase}]"))
        for phase in ("ED", "ES")
    }
    for position in positions:
        at = study[study["position"] == position].set_index("cardiac_phase")
        line = page.locator(f"table.cine tr[data-position='{position}']")
        assert line.locator("th").inner_text().split() == [
            "position",
            str(position),
            f"{at['position_mm'].iloc[0]:.1f}",
            "mm",
        ]
        ed = box(line.locator(f".card[data-slice='{at.loc['ED', 'slice']}']"))
        es = box(line.locator(f".card[data-slice='{at.loc['ES', 'slice']}']"))
        assert abs(ed["y"] - es["y"]) < 1  # side by side
        assert ed["x"] + ed["width"] <= es["x"]  # ED left of ES, apart
        for phase, card in (("ED", ed), ("ES", es)):  # under its column's heading
            assert headings[phase]["x"] <= card["x"] + card["width"] / 2
            assert card["x"] + card["width"] / 2 <= headings[phase]["x"] + headings[phase]["width"]
    # Each column is labelled with its phase and trigger time, from the index.
    for phase in ("ED", "ES"):
        at = study[study["cardiac_phase"] == phase]
        heading = page.locator(f"table.cine thead th[data-cardiac-phase={phase}]").inner_text()
        assert (
            heading
            == f"{phase} · phase {at['phase'].iloc[0]} · {at['trigger_time'].iloc[0]:.0f} ms"
        )
    # The arrow keys step through the overlays in reading order: position by position, ED
    # then ES.
    reading = study.assign(column=study["cardiac_phase"].map({"ED": 0, "ES": 1}))
    slices = reading.sort_values(["position", "column"])["slice"].tolist()
    order = [f"PHANTOM0001/{number:04d}.png" for number in slices]
    page.locator(f".card[data-slice='{slices[0]}'] img").click()
    page.locator("#lightbox").wait_for(state="visible")
    seen = [page.locator("#lightbox-image").get_attribute("src")]
    for _ in order[1:]:
        page.keyboard.press("ArrowRight")
        seen.append(page.locator("#lightbox-image").get_attribute("src"))
    assert seen == order
    page.keyboard.press("Escape")
    # "only flagged slices" keeps the flagged slice's position alone, and its card alone.
    flagged = study[study["flags"] != ""]
    page.check("#only-flagged-slices")
    shown_rows = [r for r in rows.all() if r.is_visible()]
    assert [int(r.get_attribute("data-position")) for r in shown_rows] == sorted(
        set(flagged["position"])
    )
    shown_cards = [c for c in page.locator("table.cine .card").all() if c.is_visible()]
    assert [int(c.get_attribute("data-slice")) for c in shown_cards] == sorted(flagged["slice"])
    page.uncheck("#only-flagged-slices")
    assert all(r.is_visible() for r in rows.all())
    # A position without an ED contour (PHANTOM0002's slice 4 does not load) shows an empty
    # cell beside its ES overlay.
    other = index[index["study_id"] == "PHANTOM0002"]
    with_ed = set(other.loc[other["cardiac_phase"] == "ED", "position"])
    without_ed = sorted(set(other["position"]) - with_ed)
    assert without_ed  # the phantom's unreadable DICOM
    page.click("li[data-study=PHANTOM0002]")
    for position in without_ed:
        line = page.locator(f"table.cine tr[data-position='{position}']")
        assert line.locator("td .empty").all_inner_texts() == ["no ED contour"]
        assert line.locator(".card").count() == 1
    page.click("li[data-study=PHANTOM0001]")
    page.locator("main").evaluate("main => main.scrollTo(0, 0)")
    page.screenshot(path=tmp_path / "review-by-position.png")
    page.close()
    assert errors == []


@pytest.fixture(scope="module")
def downloaded(first_version, browser, tmp_path_factory):
    """Review version 1.0.0 in its review sheet: mark the two DECISIONS, download the file."""
    workdir, _ = first_version
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto((workdir / "out/1.0.0/qc/review.html").as_uri())
    page.fill("#reviewer", REVIEWER)
    for study, number, reason in DECISIONS:
        page.click(f"li[data-study={study}]")
        card = page.locator(f".card[data-slice='{number}']")
        if study == "PHANTOM0001":  # reason first, then the box
            card.locator("input.reason").fill(reason)
            card.locator("input.exclude").check()
        else:  # the box first: the sheet asks for a reason
            card.locator("input.exclude").check()
            assert card.locator(".missing").inner_text() == "a reason is needed"
            card.locator("input.reason").fill(reason)
        for image in page.locator(".card img, img.plot").all():
            image.scroll_into_view_if_needed()
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
            )
    page.click("li[data-study=PHANTOM0001]")
    assert page.locator("#count").inner_text() == "2 slices marked to exclude"
    # the README's picture: the header and two positions, ED beside ES, the marked slice too
    page.set_viewport_size({"width": 1280, "height": 1140})
    page.locator("main").evaluate("main => main.scrollTo(0, 0)")
    folder = tmp_path_factory.mktemp("review")
    screenshot(page, "qc-review.png", folder)
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "exclusions.csv"
    path = folder / "exclusions.csv"
    download.value.save_as(path)
    page.close()
    return path


def test_review_sheet_downloads_the_marked_slices_as_exclusions_csv(downloaded, browser):
    today = datetime.date.today().isoformat()
    rows = [f"{study},{number},{reason},{REVIEWER},{today}" for study, number, reason in DECISIONS]
    rows[1] = rows[1].replace(DECISIONS[1][2], f'"{DECISIONS[1][2]}"')  # it holds a comma
    assert (
        downloaded.read_text() == "study_id,slice,reason,reviewer,date\n" + "\n".join(rows) + "\n"
    )


def test_next_version_built_with_the_exclusions_leaves_out_exactly_those_slices(
    first_version, downloaded, browser
):
    workdir, raw = first_version
    run_workflow(
        workdir, "--config", f"data_dir={raw}", "out_dir=out", "contours=[i,o]",
        "version=2.0.0", f"exclusions={downloaded}",
    )  # fmt: skip
    old, new = workdir / "out/1.0.0", workdir / "out/2.0.0"
    samples = {
        version: {
            (row.study_id, row.slice)
            for row in pd.read_parquet(folder / "index.parquet").itertuples()
        }
        for version, folder in (("old", old), ("new", new))
    }
    excluded = {(study, number) for study, number, _ in DECISIONS}
    assert excluded <= samples["old"]
    assert samples["new"] == samples["old"] - excluded
    validation = pd.read_parquet(new / "validation.parquet")
    rows = validation[validation["code"] == "excluded_by_review"]
    today = datetime.date.today().isoformat()
    assert sorted(zip(rows["study_id"], rows["slice"], rows["message"], strict=True)) == [
        (study, number, f"excluded by review ({REVIEWER}, {today}): {reason}")
        for study, number, reason in DECISIONS
    ]
    check_accounting(raw, new, ("i", "o"))
    manifest = read_whole_manifest(new / "manifest.json")
    entry = manifest["inputs"]["exclusions.csv"]
    assert entry["sha256"] == hashlib.sha256(downloaded.read_bytes()).hexdigest()
    assert entry["path"] == manifest["config"]["exclusions"] == str(downloaded)
    assert manifest["counts"]["problems"]["excluded_by_review"] == 2

    # The next review starts from the decisions this version was built with.
    page = browser.new_page()
    page.goto((new / "qc/review.html").as_uri())
    assert page.locator("#count").inner_text() == "2 slices marked to exclude"
    # Loading the same file again changes nothing: decisions are keyed by study and slice.
    page.set_input_files("#load", downloaded)
    page.locator("#status", has_text="2 decision(s) loaded").wait_for()
    assert page.locator("#count").inner_text() == "2 slices marked to exclude"
    page.close()
