"""The review sheet's page: its embedded data, relative picture paths, and safe escaping.
(Its behaviour in a browser is tested in tests/test_browser_qc.py.)"""

from __future__ import annotations

import json
import re

import pandas as pd

from workflow_scripts.qc.figures import reviewed_exclusions, sample_figures
from workflow_scripts.qc.review_sheet import review_sheet_html


def sheet(reason: str = "wrong slice") -> tuple[str, dict]:
    index = pd.DataFrame(
        [
            {"study_id": "S1", "slice": 2, "split": "val", "npz": "slices/S1/0002.npz",
             "qc": "qc/S1/0002.png", "mask_pixels": 120, "omask_pixels": None,
             "i_outside_o": None, "flags": "mask_area_outlier"},
            {"study_id": "S1", "slice": 4, "split": "val", "npz": "slices/S1/0004.npz",
             "qc": "qc/S1/0004.png", "mask_pixels": 80, "omask_pixels": 200,
             "i_outside_o": 0.25, "flags": ""},
        ]
    )  # fmt: skip
    validation = pd.DataFrame([{"study_id": "S1", "slice": 6, "code": "excluded_by_review"}])
    decisions = [{"study_id": "S1", "slice": 6, "reason": reason, "reviewer": "Ann", "date": ""}]
    figures = sample_figures(index)
    page = review_sheet_html(
        "2.0.0", figures, validation, reviewed_exclusions(validation, decisions)
    )
    text = page.decode("utf-8")
    match = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    return text, json.loads(match.group(1))


def test_sheet_embeds_each_samples_figures_and_relative_picture_paths():
    text, data = sheet()
    assert data["version"] == "2.0.0" and "Review dataset version 2.0.0" in text
    (study,) = data["studies"]
    assert study["id"] == "S1" and study["unit"] == "px"
    assert study["plot"] == "S1/mask_areas.png"  # qc/S1/mask_areas.png, drawn by its build
    assert [(s["slice"], s["qc"], s["area"], s["ratio"], s["flags"]) for s in study["samples"]] == [
        (2, "S1/0002.png", 120.0, 1.2, ["mask_area_outlier"]),
        (4, "S1/0004.png", 80.0, 0.8, []),
    ]
    assert study["samples"][1]["oarea"] == 200.0 and study["samples"][1]["i_outside_o"] == 0.25
    assert dict(study["summary"])["excluded by review"] == "1"


def test_sheet_carries_the_versions_own_exclusions_forward():
    _, data = sheet()
    assert data["studies"][0]["excluded"] == [
        {"slice": 6, "reason": "wrong slice", "reviewer": "Ann", "date": ""}
    ]


def test_sheet_needs_no_network_and_no_build_machine_path():
    text, _ = sheet()
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)=["']/""", text)


def test_a_reason_cannot_close_the_data_element():
    text, data = sheet(reason="</script><script>alert(1)</script>")
    assert text.count("</script>") == 2  # the data element's and the program's own
    assert data["studies"][0]["excluded"][0]["reason"] == "</script><script>alert(1)</script>"
