"""The cine: positions and phases from the tags, their warnings, ED/ES and the volumes.

The arrangement is tested on headers made here (what a file's tags say) and on the phantom,
whose volumes are worked out by hand from its ellipses (``workflow_scripts.raw.phantom``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from build_helpers import build_studies, phantom
from workflow_scripts.raw.dicom_slice import DicomHeader, read_dicom_header
from workflow_scripts.raw.geometry import SliceGeometry
from workflow_scripts.raw.phantom import PIXEL_SPACING_MM, SPACING_MM, phantom_dicom
from workflow_scripts.study.cine import CineFrame, arrange_cine
from workflow_scripts.study.measures import ContourAreas, measure_study

# A stack whose normal is (0, 0, 1): rows along x, columns along y.
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def header(z=None, time=None, cycle=3, orientation=AXIAL, spacing=10.0) -> DicomHeader:
    geometry = SliceGeometry(
        pixel_spacing=(1.0, 1.0),
        spacing_problem=None,
        image_position=None if z is None else (5.0, 7.0, z),
        image_orientation=orientation,
        spacing_between_slices=spacing,
    )
    return DicomHeader(None, geometry, time, cycle)


def cine_of(headers: dict[int, DicomHeader]):
    frames = [CineFrame(n, f"dicoms/S/{n}.dcm", h) for n, h in headers.items()]
    return arrange_cine("S", frames)


def regular(positions=3, phases=3, step=-10.0, changes=None):
    """Image n at z = step x ((n - 1) // phases), TriggerTime 100 x ((n - 1) % phases)."""
    headers = {}
    for n in range(1, positions * phases + 1):
        position, phase = divmod(n - 1, phases)
        headers[n] = header(step * position, 100.0 * phase, phases)
    headers.update(changes or {})
    return headers


def places(cine):
    return {n: (p.position, p.position_mm, p.phase) for n, p in cine.places.items()}


def codes(cine):
    return [(problem.code, problem.slice) for problem in cine.problems]


def test_positions_follow_the_normal_from_the_lowest_image_number():
    # z falls with the image number: position 0 is the highest z, position_mm grows
    cine = cine_of(regular())
    assert places(cine)[1] == (0, 0.0, 0) and places(cine)[9] == (2, 20.0, 2)
    assert places(cine)[5] == (1, 10.0, 1)
    assert cine.spacing_mm == 10.0 and cine.problems == []
    rising = cine_of(regular(step=8.0))
    assert places(rising)[4] == (1, 8.0, 0) and rising.spacing_mm == 8.0


def test_phases_are_trigger_time_ranks_whatever_the_file_order():
    # the files of position 0 written in reverse time order
    headers = regular(changes={1: header(0.0, 200.0), 3: header(0.0, 0.0)})
    cine = cine_of(headers)
    assert places(cine)[1][2] == 2 and places(cine)[3][2] == 0
    # the image-number arithmetic disagrees for both: warned, the tags' used
    assert codes(cine) == [("cine_order_mismatch", 1), ("cine_order_mismatch", 3)]
    assert "the tags' are used" in cine.problems[0].message


def test_missing_tags_fall_back_to_the_image_number_and_say_so():
    headers = regular(changes={5: header(None, None)})
    cine = cine_of(headers)
    assert places(cine)[5] == (1, 10.0, 1)
    [problem] = cine.problems
    assert (problem.code, problem.slice, problem.path) == ("cine_tags_missing", 5, "dicoms/S/5.dcm")
    assert "no ImagePositionPatient: position 1 from its image number" in problem.message
    assert "no TriggerTime: phase 1 from its image number" in problem.message
    unreadable = cine_of(regular(changes={5: None}))
    assert "the header cannot be read" in unreadable.problems[0].message
    no_cycle = cine_of({1: header(0.0, 0.0, None), 2: header(None, None, None)})
    assert places(no_cycle)[2] == (None, None, None)
    assert "position unknown" in no_cycle.problems[0].message


def test_a_stray_file_numbered_far_out_is_not_placed_by_the_arithmetic():
    # 9 tagged files at 3 positions; a tagless 9999.dcm would be position 3332 by (n - 1) // 3
    headers = regular(changes={9999: header(None, None)})
    cine = cine_of(headers)
    assert places(cine)[9999] == (None, None, None)
    assert {p.position for n, p in cine.places.items() if n != 9999} == {0, 1, 2}
    [problem] = [p for p in cine.problems if p.slice == 9999]
    assert problem.code == "cine_tags_missing"
    assert "position unknown (its image number gives position 3332, beyond the 4" in (
        problem.message
    )
    # within reach of the study's files, the arithmetic still places a tagless file
    assert places(cine_of(regular(changes={10: header(None, None)})))[10][0] == 3


def test_a_position_with_another_frame_count_is_named():
    headers = regular()
    del headers[6]
    cine = cine_of(headers)
    [problem] = cine.problems
    assert (problem.code, problem.slice) == ("cine_frame_count", 4)
    assert "position 1 (images 4-5) holds 2 frames, CardiacNumberOfImages is 3" in problem.message


def test_uneven_steps_and_a_spacing_tag_that_disagrees_are_named():
    headers = regular(positions=4)
    for n in (10, 11, 12):  # the last position 12 mm further instead of 10
        headers[n] = header(-32.0, 100.0 * ((n - 1) % 3))
    cine = cine_of(headers)
    assert places(cine)[10][1] == 32.0 and cine.spacing_mm == 10.0
    assert codes(cine) == [("cine_spacing_mismatch", 10)]
    assert "lies 12.00 mm from position 2" in cine.problems[0].message
    stated = {n: header(h.geometry.image_position[2], h.trigger_time, spacing=8.0)
              for n, h in regular().items()}  # fmt: skip
    message = cine_of(stated).problems[0].message
    assert "SpacingBetweenSlices is 8 mm, ImagePositionPatient steps 10.00 mm" in message


def test_a_file_with_another_orientation_is_named_and_projected_on_the_study_normal():
    tilted = (1.0, 0.0, 0.0, 0.0, 0.9950, 0.0998)
    cine = cine_of(regular(changes={5: header(-10.0, 100.0, orientation=tilted)}))
    assert places(cine)[5] == (1, 10.0, 1)
    assert codes(cine) == [("cine_orientation_changes", 5)]


def test_the_header_reader_reads_the_cine_tags_without_the_pixels():
    pixels = np.zeros((8, 8), dtype=np.int16)
    data = phantom_dicom(pixels, "P", 7, cine=True)
    tags = read_dicom_header(data[: len(data) - 64])  # the pixels cut short: no matter
    assert (tags.instance_number, tags.trigger_time, tags.cardiac_images) == (7, 425.0, 4)
    assert tags.geometry.spacing_between_slices == SPACING_MM
    normal = np.array(tags.geometry.normal)
    np.testing.assert_allclose(normal, [-0.48, 0.64, 0.6], atol=1e-9)


def areas(*rows):
    return [ContourAreas(n, p, ph, i, o, 2.0) for n, p, ph, i, o in rows]


def test_ed_is_the_phase_with_the_larger_area_over_positions_contoured_at_both():
    # phase 5 is larger where both exist; position 2 (phase 5 only) is left out
    samples = areas((1, 0, 2, 100.0, None), (2, 0, 5, 150.0, 200.0), (3, 1, 2, 80.0, None),
                    (4, 1, 5, 120.0, 170.0), (5, 2, 5, 900.0, None))  # fmt: skip
    measures = measure_study("S", samples, spacing_mm=10.0)
    assert (measures.ed_phase, measures.es_phase) == (5, 2)
    row = measures.row
    assert row["positions_used"] == 2
    assert row["edv_ml"] == pytest.approx((150 + 120) * 2.0 * 10 / 1000)
    assert row["esv_ml"] == pytest.approx((100 + 80) * 2.0 * 10 / 1000)
    assert row["ef_percent"] == pytest.approx(100 * 90 / 270)
    assert row["myocardium_ml"] == pytest.approx((50 + 50) * 2.0 * 10 / 1000)
    assert row["lv_mass_g"] == pytest.approx(1.05 * row["myocardium_ml"])


@pytest.mark.parametrize(
    ("samples", "spacing", "reason"),
    [
        (areas((1, 0, 2, 1.0, None), (2, 1, 2, 1.0, None)), 10.0, "at 1 phase(s) (2)"),
        (areas((1, 0, 2, 1.0, None), (2, 1, 5, 1.0, None)), 10.0, "no position has i-contours"),
        (areas((1, 0, 2, 1.0, None), (2, 0, 5, 2.0, None)), None, "no spacing"),
    ],
)
def test_a_study_without_two_contoured_phases_has_no_measures_and_says_why(
    samples, spacing, reason
):
    measures = measure_study("S", samples, spacing)
    assert measures.row is None and reason in measures.reason


def test_the_phantom_volumes_are_those_of_its_ellipses(tmp_path):
    # 256 px, 20 images: 5 positions x 4 phases. At ED the blood pool's radii are
    # a = 0.09 x 256 x (1 - 0.5 p / 4) and 0.9 a px at position p; at ES 0.8 times both; the
    # o-contour (at ED) adds 0.035 x 256 px to both radii. Volumes: sum of pi a b x
    # PixelSpacing² x 10 mm, in mL. EF = 1 - 0.8² = 36%.
    raw = phantom(tmp_path / "raw", studies=1, slices=20, size=256, faults=False)
    built = build_studies(raw, tmp_path / "out", contours=["i", "o"])
    pixel, wall = PIXEL_SPACING_MM**2, 0.035 * 256
    radii = [0.09 * 256 * (1 - 0.5 * p / 4) for p in range(5)]
    edv = sum(math.pi * a * 0.9 * a for a in radii) * pixel * SPACING_MM / 1000
    myocardium = sum(
        math.pi * ((a + wall) * (0.9 * a + wall) - a * 0.9 * a) for a in radii
    ) * pixel * SPACING_MM / 1000  # fmt: skip
    measures = pd.read_parquet(tmp_path / "out/1.0.0/pairs/PHANTOM0001.parquet")
    row = built.records["PHANTOM0001"]["measures"]
    assert (row["ed_phase"], row["es_phase"], row["positions_used"]) == (3, 1, 5)
    assert row["spacing_mm"] == pytest.approx(SPACING_MM, abs=1e-3)
    assert row["edv_ml"] == pytest.approx(edv, rel=0.02)
    assert row["esv_ml"] == pytest.approx(0.64 * edv, rel=0.02)
    assert abs(row["ef_percent"] - 36.0) < 1.0
    assert row["myocardium_ml"] == pytest.approx(myocardium, rel=0.02)
    assert row["lv_mass_g"] == pytest.approx(1.05 * myocardium, rel=0.02)
    assert set(measures[measures["phase"] == 3]["cardiac_phase"]) == {"ED"}
