"""A study's clinical measures from its manual contours: ED/ES, EDV, ESV, SV, EF, LV mass.

The rule is the Sunnybrook challenge's (its evaluator, ``compare_contours.m``; ``docs/cine.md``):

- **ED and ES**: of the two phases with i-contours, ED is the one with the larger summed
  i-contour area over the positions contoured at both, ES the other. A study with i-contours at
  one phase, or at more than two, has no ED/ES.
- **Volumes** (discs): the sum over the positions contoured at both phases of the i-contour's
  area x the spacing between adjacent positions (from ImagePositionPatient, see
  :mod:`workflow_scripts.study.cine`), in mL; SV = EDV - ESV, EF = SV / EDV.
- **Myocardium**: over the positions with both an i- and an o-contour at ED, the sum of
  (o-area - i-area) x spacing; LV mass = myocardium x :data:`MYOCARDIUM_DENSITY_G_PER_ML`.

Areas are the contour polygons' (shoelace, :func:`~workflow_scripts.study.masks.polygon_area`)
x the DICOM's PixelSpacing, as the challenge measures them, not mask pixel counts (which
differ by the pixels the polygon's edge cuts; ``docs/cine.md`` gives the difference on the real
studies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

# The challenge's 1.05 g/mL, one constant for the manual measures and the evaluation's.
from loader.evaluation.volumes import MYOCARDIUM_DENSITY_G_PER_ML

__all__ = [
    "MEASURES_SCHEMA",
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "ContourAreas",
    "StudyMeasures",
    "measure_study",
]

#: measures.parquet: one row per study with ED and ES (DESIGN.md, *The cine*).
MEASURES_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("ed_phase", pa.int32()),
        ("es_phase", pa.int32()),
        ("positions_used", pa.int32()),
        ("spacing_mm", pa.float64()),
        ("edv_ml", pa.float64()),
        ("esv_ml", pa.float64()),
        ("sv_ml", pa.float64()),
        ("ef_percent", pa.float64()),
        ("myocardium_ml", pa.float64()),
        ("lv_mass_g", pa.float64()),
    ]
)


@dataclass(frozen=True)
class ContourAreas:
    """One sample's contour areas: its ``slice`` (image number), ``position`` and ``phase``
    (None where unknown), the i-contour polygon's area and the o-contour's (None without one)
    in square pixels, and ``pixel_area_mm2`` (row x column spacing; None where unknown)."""

    slice: int
    position: int | None
    phase: int | None
    i_px: float
    o_px: float | None
    pixel_area_mm2: float | None

    def area(self, kind: str) -> float | None:
        """The contour's area in mm², or in px when the pixel spacing is unknown."""
        value = self.i_px if kind == "i" else self.o_px
        if value is None:
            return None
        return value * self.pixel_area_mm2 if self.pixel_area_mm2 is not None else value


@dataclass(frozen=True)
class StudyMeasures:
    """What :func:`measure_study` found: ``ed_phase``/``es_phase`` (None without ED/ES), the
    measures.parquet ``row`` (None without one) and ``reason``, why not (None with a row)."""

    ed_phase: int | None
    es_phase: int | None
    row: dict | None
    reason: str | None


def measure_study(
    study_id: str, samples: Sequence[ContourAreas], spacing_mm: float | None
) -> StudyMeasures:
    """ED/ES and the measures of one study from its samples' contour areas and the spacing
    between its slice positions (mm; see the module's docstring)."""
    placed = [s for s in samples if s.position is not None and s.phase is not None]
    if not placed:
        return StudyMeasures(None, None, None, "no sample with a known position and phase")
    phases = sorted({s.phase for s in placed})
    if len(phases) != 2:
        listed = ", ".join(map(str, phases))
        return StudyMeasures(
            None, None, None, f"i-contours at {len(phases)} phase(s) ({listed}); ED/ES need two"
        )
    at: dict[tuple[int, int], ContourAreas] = {}
    for sample in placed:
        key = (sample.position, sample.phase)
        if key in at:
            return StudyMeasures(
                None,
                None,
                None,
                f"slices {at[key].slice} and {sample.slice} lie at the same position "
                f"{key[0]} and phase {key[1]}",
            )
        at[key] = sample
    common = sorted({p for p, _ in at if (p, phases[0]) in at and (p, phases[1]) in at})
    if not common:
        return StudyMeasures(None, None, None, "no position has i-contours at both phases")
    totals = [sum(at[(p, phase)].area("i") for p in common) for phase in phases]
    if totals[0] == totals[1]:
        return StudyMeasures(None, None, None, "equal i-contour areas at both phases")
    ed, es = (phases[0], phases[1]) if totals[0] > totals[1] else (phases[1], phases[0])
    if spacing_mm is None:
        return StudyMeasures(ed, es, None, "fewer than two slice positions: no spacing")
    unknown = [
        at[(p, ph)].slice for p in common for ph in phases if at[(p, ph)].pixel_area_mm2 is None
    ]
    if unknown:
        return StudyMeasures(
            ed, es, None, f"PixelSpacing unknown on slice(s) {', '.join(map(str, unknown))}"
        )
    edv = sum(at[(p, ed)].area("i") for p in common) * spacing_mm / 1000
    esv = sum(at[(p, es)].area("i") for p in common) * spacing_mm / 1000
    walls = [at[(p, ed)] for p, phase in sorted(at) if phase == ed and at[(p, ed)].o_px is not None]
    walls = [s for s in walls if s.pixel_area_mm2 is not None]
    myocardium = (
        sum(s.area("o") - s.area("i") for s in walls) * spacing_mm / 1000 if walls else None
    )
    row = {
        "study_id": study_id,
        "ed_phase": ed,
        "es_phase": es,
        "positions_used": len(common),
        "spacing_mm": spacing_mm,
        "edv_ml": edv,
        "esv_ml": esv,
        "sv_ml": edv - esv,
        "ef_percent": 100 * (edv - esv) / edv if edv > 0 else None,
        "myocardium_ml": myocardium,
        "lv_mass_g": myocardium * MYOCARDIUM_DENSITY_G_PER_ML if myocardium is not None else None,
    }
    return StudyMeasures(ed, es, row, None)
