"""The real Sunnybrook studies as cines (skipped when absent): every DICOM's place and every
study's volumes, checked against an independent reading of the tags and the contour files.

The expected values come from pydicom and numpy here (ImagePositionPatient projected on the
normal of ImageOrientationPatient, TriggerTime ranks, shoelace areas of the polygons), and from
the reference figures of ``notes/cardiac-users.md`` (the challenge's formula applied to the
same polygons, computed separately before this code existed).
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest

from build_helpers import build_by_calls, build_studies
from conftest import REAL_DATA, is_known_real_data
from workflow_scripts.config import default_config

pytestmark = pytest.mark.realdata

#: SC-HF-I-1, -2, -4, -5: EDV, ESV (mL), EF (%) (notes/cardiac-users.md §0).
REFERENCE = {
    "SCD0000101": (191.3, 141.3, 26.2),
    "SCD0000201": (241.9, 180.3, 25.5),
    "SCD0000301": (229.7, 179.6, 21.8),
    "SCD0000401": (202.1, 135.3, 33.0),
}


@pytest.fixture(scope="module")
def real_cine(tmp_path_factory):
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    workdir = tmp_path_factory.mktemp("real_cine")
    config = default_config(data_dir=str(REAL_DATA), out_dir="out", contours=["i", "o"])
    version_dir = workdir / build_by_calls(config, workdir).layout.version_dir
    return version_dir


def read_tags(study_dir):
    """Image number -> (distance along the normal, TriggerTime, SliceLocation, pixel area)."""
    tags = {}
    for path in study_dir.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        orientation = np.array(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        spacing = [float(v) for v in ds.PixelSpacing]
        tags[int(path.stem)] = (
            float(np.dot(normal, np.array(ds.ImagePositionPatient, dtype=float))),
            float(ds.TriggerTime),
            float(ds.SliceLocation),
            spacing[0] * spacing[1],
        )
    return tags


def independent_places(tags):
    """Image number -> (position, position_mm, phase) from the tags alone."""
    distances = sorted({round(d, 2) for d, *_ in tags.values()})
    first = min(tags)  # the lowest image number's plane is position 0
    if abs(round(tags[first][0], 2) - distances[0]) > abs(round(tags[first][0], 2) - distances[-1]):
        distances.reverse()
    places = {}
    for number, (distance, *_) in tags.items():
        position = distances.index(round(distance, 2))
        places[number] = [position, abs(distance - tags[first][0])]
    for position in range(len(distances)):
        members = sorted((tags[n][1], n) for n in places if places[n][0] == position)
        for phase, (_, number) in enumerate(members):
            places[number].append(phase)
    return places


def shoelace(points):
    x, y = points[:, 0], points[:, 1]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def test_every_dicom_and_sample_has_the_place_its_tags_give(real_cine):
    index = pd.read_parquet(real_cine / "index.parquet")
    for pairs_file in sorted((real_cine / "pairs").glob("*.parquet")):
        pairs = pd.read_parquet(pairs_file)
        study = pairs_file.stem
        if not (REAL_DATA / "dicoms" / study).is_dir():
            continue
        tags = read_tags(REAL_DATA / "dicoms" / study)
        places = independent_places(tags)
        dicoms = pairs.dropna(subset=["dicom"])
        assert sorted(dicoms["slice"]) == sorted(tags)
        for row in dicoms.itertuples():
            position, position_mm, phase = places[row.slice]
            assert (row.position, row.phase) == (position, phase), row.slice
            assert row.position_mm == pytest.approx(position_mm, abs=1e-3)
            assert row.trigger_time == tags[row.slice][1]
            # this archive is position-major with 20 phases, as the evaluator assumes
            assert (row.position, row.phase) == divmod(row.slice - 1, 20)
        samples = index[index["study_id"] == study]
        merged = samples.merge(pairs, on="slice", suffixes=("", "_pairs"))
        assert len(merged) == len(samples) > 0
        for column in ("position", "position_mm", "phase", "trigger_time", "cardiac_phase"):
            assert list(merged[column]) == list(merged[f"{column}_pairs"]), column
        # SliceLocation steps are shorter than the distance between the planes (28-34% here)
        first = dicoms.groupby("position")["slice"].first()
        location = np.array([tags[n][2] for n in first])
        apart = np.array([places[n][1] for n in first])
        assert np.all(np.abs(np.diff(location)) < 0.75 * np.diff(apart))
    validation = pd.read_parquet(real_cine / "validation.parquet")
    if is_known_real_data():  # the shipped studies are regular cines
        assert not validation["code"].str.startswith("cine_").any()


def disc_rule(study: str, original: str):
    """EDV, ESV (mL), EF (%), ED and ES image numbers' phase, from the contour files, the
    PixelSpacing and the IPP spacing, by the challenge's rule."""
    tags = read_tags(REAL_DATA / "dicoms" / study)
    places = independent_places(tags)
    spacing = np.median(np.diff(sorted({round(p[1], 3) for p in places.values()})))
    areas = {}  # phase -> position -> mm²
    for path in (REAL_DATA / "contourfiles" / original / "i-contours").glob("*.txt"):
        number = int(re.search(r"IM-0001-(\d{4})", path.name)[1])
        position, _, phase = places[number]
        areas.setdefault(phase, {})[position] = shoelace(np.loadtxt(path)) * tags[number][3]
    one, two = sorted(areas)
    common = sorted(set(areas[one]) & set(areas[two]))
    totals = {phase: sum(areas[phase][p] for p in common) * spacing / 1000 for phase in areas}
    ed, es = max(totals, key=totals.get), min(totals, key=totals.get)
    edv, esv = totals[ed], totals[es]
    return edv, esv, 100 * (edv - esv) / edv, ed, es, len(common)


def test_volumes_follow_the_disc_rule_on_the_contour_polygons(real_cine):
    measures = pd.read_parquet(real_cine / "measures.parquet").set_index("study_id")
    index = pd.read_parquet(real_cine / "index.parquet")
    originals = dict(zip(index["study_id"], index["original_id"], strict=False))
    assert sorted(measures.index) == sorted(originals)
    for study, original in originals.items():
        edv, esv, ef, ed, es, used = disc_rule(study, original)
        row = measures.loc[study]
        assert row.edv_ml == pytest.approx(edv, rel=0.02)
        assert row.esv_ml == pytest.approx(esv, rel=0.02)
        assert abs(row.ef_percent - ef) < 1.0
        assert (row.ed_phase, row.es_phase, row.positions_used) == (ed, es, used)
        assert row.sv_ml == pytest.approx(row.edv_ml - row.esv_ml)
        assert row.lv_mass_g == pytest.approx(1.05 * row.myocardium_ml)
        samples = index[index["study_id"] == study]
        assert set(samples[samples["phase"] == ed]["cardiac_phase"]) == {"ED"}
        assert set(samples[samples["phase"] == es]["cardiac_phase"]) == {"ES"}
        if is_known_real_data():
            reference = REFERENCE[study]
            assert (row.edv_ml, row.esv_ml, row.ef_percent) == pytest.approx(reference, abs=0.06)


def study_copy(tmp_path, study: str, original: str):
    """A raw folder holding one real study: its DICOMs through a link, its contours copied."""
    raw = tmp_path / "raw"
    (raw / "dicoms").mkdir(parents=True)
    (raw / "dicoms" / study).symlink_to(REAL_DATA / "dicoms" / study)
    shutil.copytree(REAL_DATA / "contourfiles" / original, raw / "contourfiles" / original)
    (raw / "link.csv").write_text(f"patient_id,original_id\n{study},{original}\n")
    return raw


def outliers(raw, out) -> dict[int, str]:
    built = build_studies(raw, out, contours=["i", "o"])
    [record] = built.records.values()
    return {
        p["slice"]: p["message"] for p in record["problems"] if p["code"] == "mask_area_outlier"
    }


def icontour(raw, original: str, number: int):
    return (
        raw / "contourfiles" / original / "i-contours" / f"IM-0001-{number:04d}-icontour-manual.txt"
    )


@pytest.fixture
def real_study(tmp_path):
    if not (REAL_DATA / "dicoms" / "SCD0000401").is_dir():
        pytest.skip(f"real study SCD0000401 not found under {REAL_DATA}")
    return study_copy(tmp_path, "SCD0000401", "SC-HF-I-5")


def test_no_real_contour_that_continues_its_phases_taper_is_flagged(real_cine):
    # SCD0000201's apical slices 187, 207 and 220 were flagged by the pooled median
    validation = pd.read_parquet(real_cine / "validation.parquet")
    assert not (validation["code"] == "mask_area_outlier").any()


def test_swapping_a_positions_ed_and_es_contours_is_flagged(real_study, tmp_path):
    original = "SC-HF-I-5"
    _, _, _, ed, es, _ = disc_rule("SCD0000401", original)
    # the interior position where ED and ES differ most (from the polygons): 20 phases here
    ratios = {}
    for position in range(2, 9):
        ed_file, es_file = (icontour(real_study, original, 20 * position + p + 1) for p in (ed, es))
        if ed_file.is_file() and es_file.is_file():
            ratios[position] = shoelace(np.loadtxt(ed_file)) / shoelace(np.loadtxt(es_file))
    position = max(ratios, key=ratios.get)
    ed_number, es_number = 20 * position + ed + 1, 20 * position + es + 1
    assert outliers(real_study, tmp_path / "before") == {}
    ed_file, es_file = (
        icontour(real_study, original, ed_number),
        icontour(real_study, original, es_number),
    )
    ed_text, es_text = ed_file.read_text(), es_file.read_text()
    ed_file.write_text(es_text)
    es_file.write_text(ed_text)
    flagged = outliers(real_study, tmp_path / "after")
    assert set(flagged) == {ed_number, es_number}
    assert f"its phase ({ed})" in flagged[ed_number]


def test_a_contour_scaled_by_one_and_a_half_is_flagged(real_study, tmp_path):
    original = "SC-HF-I-5"
    _, _, _, ed, _, _ = disc_rule("SCD0000401", original)
    number = 20 * 5 + ed + 1  # an interior position (contoured: 1 to 9)
    path = icontour(real_study, original, number)
    points = np.loadtxt(path)
    centroid = points.mean(axis=0)
    path.write_text("".join(f"{x:.2f} {y:.2f}\n" for x, y in centroid + 1.5 * (points - centroid)))
    assert set(outliers(real_study, tmp_path / "out")) == {number}
