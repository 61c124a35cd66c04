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


def embedded(index: pd.DataFrame, measures: pd.DataFrame | None = None) -> dict:
    """The sheet's embedded data for ``index`` (no validation rows, no decisions)."""
    validation = pd.DataFrame({"study_id": [], "slice": [], "code": []})
    page = review_sheet_html(
        "3.0.0", sample_figures(index), validation, reviewed_exclusions(validation, []), measures
    )
    match = re.search(
        r'<script id="data" type="application/json">(.*?)</script>', page.decode(), re.S
    )
    return json.loads(match.group(1))


def cine_sample(number: int, position, position_mm, phase, trigger_time, cardiac: str) -> dict:
    return {
        "study_id": "S1", "slice": number, "split": "train", "npz": f"slices/S1/{number:04d}.npz",
        "qc": f"qc/S1/{number:04d}.png", "mask_pixels": 100, "omask_pixels": None,
        "i_outside_o": None, "flags": "", "position": position, "position_mm": position_mm,
        "phase": phase, "trigger_time": trigger_time, "cardiac_phase": cardiac,
    }  # fmt: skip


#: A study drawn by hand: ES (phase 2) has the lower image numbers at each position, ED is
#: phase 7 (trigger times 650 and 651.6 ms: they differ a little between positions, and are
#: shown in whole ms), position 1
#: has no ES contour, one contour lies at phase 4 (neither ED nor ES), and slice 99 has no
#: known position (a cine_* problem).
CINE = [
    cine_sample(23, 1, 8.5, 7, 651.6, "ED"),
    cine_sample(3, 0, 0.0, 2, 180.0, "ES"),
    cine_sample(8, 0, 0.0, 7, 650.0, "ED"),
    cine_sample(43, 2, 17.0, 2, 181.0, "ES"),
    cine_sample(48, 2, 17.0, 7, 650.0, "ED"),
    cine_sample(45, 2, 17.0, 4, 400.0, ""),
    cine_sample(99, None, None, None, None, ""),
]


def test_a_studys_slices_are_laid_out_by_position_with_ED_and_ES_side_by_side():
    (study,) = embedded(pd.DataFrame(CINE))["studies"]
    cine = study["cine"]
    assert cine["columns"] == [
        {"cardiac_phase": "ED", "phase": 7, "heading": "ED · phase 7 · 650\N{EN DASH}652 ms"},
        {"cardiac_phase": "ES", "phase": 2, "heading": "ES · phase 2 · 180\N{EN DASH}181 ms"},
        {"cardiac_phase": "", "phase": 4, "heading": "phase 4 · 400 ms"},
    ]
    assert cine["rows"] == [
        {"position": 0, "position_mm": 0.0, "cells": [[8], [3], []]},
        {"position": 1, "position_mm": 8.5, "cells": [[23], [], []]},
        {"position": 2, "position_mm": 17.0, "cells": [[48], [43], [45]]},
    ]
    assert cine["unplaced"] == [99]
    # every sample is shown exactly once
    shown = [n for row in cine["rows"] for cell in row["cells"] for n in cell] + cine["unplaced"]
    assert sorted(shown) == sorted(sample["slice"] for sample in CINE)
    # each sample's entry carries the index's values, whole numbers as JSON integers
    by_slice = {sample["slice"]: sample for sample in study["samples"]}
    assert by_slice[23]["position"] == 1 and isinstance(by_slice[23]["position"], int)
    assert (by_slice[23]["phase"], by_slice[23]["trigger_time"]) == (7, 651.6)
    assert (by_slice[23]["position_mm"], by_slice[23]["cardiac_phase"]) == (8.5, "ED")
    assert by_slice[99]["position"] is None and by_slice[99]["cardiac_phase"] == ""


def test_an_index_without_cine_columns_puts_every_slice_in_the_last_row():
    older = pd.DataFrame(CINE).drop(
        columns=["position", "position_mm", "phase", "trigger_time", "cardiac_phase"]
    )
    data = embedded(older)
    (study,) = data["studies"]
    assert study["cine"] == {"columns": [], "rows": [], "unplaced": [3, 8, 23, 43, 45, 48, 99]}
    assert study["measures"] is None and data["measures"] is False  # no measures.parquet


def test_the_header_carries_the_studys_row_of_measures_parquet():
    index = pd.concat([pd.DataFrame(CINE), pd.DataFrame(CINE).assign(study_id="S2")])
    measures = pd.DataFrame(
        [{"study_id": "S1", "ed_phase": 7, "es_phase": 2, "positions_used": 3,
          "spacing_mm": 8.5, "edv_ml": 120.25, "esv_ml": 50.5, "sv_ml": 69.75,
          "ef_percent": 58.004, "myocardium_ml": None, "lv_mass_g": None}]
    )  # fmt: skip
    data = embedded(index, measures)
    assert data["measures"] is True
    first, second = data["studies"]
    assert first["measures"] == {"edv_ml": 120.25, "esv_ml": 50.5, "ef_percent": 58.004}
    assert second["id"] == "S2" and second["measures"] is None  # no row: none shown


def test_two_slices_at_one_position_and_phase_share_their_cell():
    # e.g. a cine_frame_count study where two files land on one position's ES frame
    twice = [*CINE[:3], cine_sample(4, 0, 0.0, 2, 182.0, "ES")]
    (study,) = embedded(pd.DataFrame(twice))["studies"]
    assert study["cine"]["rows"][0] == {"position": 0, "position_mm": 0.0, "cells": [[8], [3, 4]]}
    assert study["cine"]["columns"][1]["heading"] == "ES · phase 2 · 180\N{EN DASH}182 ms"
