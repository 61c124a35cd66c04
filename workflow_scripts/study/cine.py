"""A study as a cine: every DICOM's slice position and phase, from its tags.

A cine short-axis study holds P slice positions x T phases (frames of one cardiac cycle). The
DICOM tags say where each file belongs (``docs/cine.md``):

- **position**: ImagePositionPatient (IPP) projected on the stack normal, the row x column
  direction cosines of ImageOrientationPatient (IOP). Files whose projections lie within
  :data:`SAME_PLANE_MM` of each other share a position. Positions are numbered 0, 1, ... along
  the normal, in the direction that gives position 0 the lowest image number (acquisition
  order; base to apex in the Sunnybrook archive). ``position_mm`` is the distance of the
  position's plane from position 0's along the normal, so it grows with ``position``.
- **phase**: the rank of the file's TriggerTime (ms after the R wave) within its position,
  0-based; equal times are ordered by image number.

SliceLocation is not used: it is the scanner's coordinate along an axis of its choosing, not
the distance between slices. Image numbers are not used either, except where a tag is missing:
then the position or phase comes from the archive's arithmetic, image ``n`` at position
``(n - 1) // T`` and phase ``(n - 1) % T`` with ``T`` = CardiacNumberOfImages, and a warning
says so. Where the tags and that arithmetic disagree, or the stack is irregular, a warning
names the file and what was used (codes ``cine_*`` of :mod:`workflow_scripts.raw.problems`);
nothing is guessed silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from workflow_scripts.raw.dicom_slice import DicomHeader
from workflow_scripts.raw.geometry import slice_normal
from workflow_scripts.raw.problems import Problem

__all__ = [
    "SAME_PLANE_MM",
    "SPACING_TOLERANCE_MM",
    "CineFrame",
    "FramePlace",
    "StudyCine",
    "arrange_cine",
]

#: Files whose planes lie closer than this along the normal share a slice position (mm).
SAME_PLANE_MM = 0.5
#: A step between adjacent positions, or SpacingBetweenSlices, that differs from the study's
#: spacing by more than this is reported (``cine_spacing_mismatch``), mm.
SPACING_TOLERANCE_MM = 0.1
#: Direction cosines that differ by more than this are another orientation.
_ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CineFrame:
    """One DICOM file of a study: its image number (file name), path relative to the data
    folder, and its header (None when the header could not be read)."""

    number: int
    path: str
    header: DicomHeader | None


@dataclass(frozen=True)
class FramePlace:
    """Where a frame lies in its study's cine; None where unknown.

    ``position``: 0-based slice position; ``position_mm``: distance of its plane from position
    0's along the stack normal (mm, >= 0, growing with ``position``); ``phase``: 0-based rank
    by TriggerTime within its position; ``trigger_time``: TriggerTime (ms).
    """

    position: int | None = None
    position_mm: float | None = None
    phase: int | None = None
    trigger_time: float | None = None


@dataclass
class StudyCine:
    """A study's cine arrangement: ``places`` by image number, ``spacing_mm`` (the median
    step between adjacent positions, from IPP; None with fewer than two positions),
    ``normal`` (the stack normal used), and the warnings found (``problems``)."""

    places: dict[int, FramePlace] = field(default_factory=dict)
    spacing_mm: float | None = None
    normal: tuple[float, float, float] | None = None
    problems: list[Problem] = field(default_factory=list)

    def place(self, number: int) -> FramePlace:
        return self.places.get(number, FramePlace())

    def columns(self, number: int) -> dict:
        """The cine columns of a pairs or index row (``cardiac_phase`` is added by the
        study's ED/ES rule)."""
        place = self.place(number)
        return {
            "position": place.position,
            "position_mm": place.position_mm,
            "phase": place.phase,
            "trigger_time": place.trigger_time,
        }


def arrange_cine(study_id: str, frames: list[CineFrame]) -> StudyCine:
    """Place every frame of a study (see the module's docstring); never raises."""
    cine = StudyCine()
    frames = sorted(frames, key=lambda frame: frame.number)

    def warn(frame: CineFrame, code: str, message: str) -> None:
        cine.problems.append(Problem(study_id, frame.path, code, message, frame.number))

    missing_tags: dict[int, list[str]] = {}  # one cine_tags_missing row per file

    def note(frame: CineFrame, message: str) -> None:
        missing_tags.setdefault(frame.number, []).append(message)

    readable = [frame for frame in frames if frame.header is not None]
    cycle = _common([f.header.cardiac_images for f in readable])
    orientation = _common([_rounded(f.header.geometry.image_orientation) for f in readable])
    normal = slice_normal(orientation)
    cine.normal = normal

    # Each frame's distance along the normal, where its tags give one.
    distance: dict[int, float] = {}
    for frame in frames:
        header = frame.header
        geometry = header.geometry if header is not None else None
        own = geometry.image_orientation if geometry is not None else None
        if own is not None and normal is not None and not _same(own, orientation):
            warn(
                frame,
                "cine_orientation_changes",
                f"ImageOrientationPatient {_text(own)} differs from the study's "
                f"{_text(orientation)}: its position is its IPP projected on the study's normal",
            )
        if geometry is not None and geometry.image_position is not None and normal is not None:
            distance[frame.number] = float(np.dot(geometry.image_position, normal))

    # Positions: planes along the normal, numbered from the end holding the lowest image number.
    planes = _planes(distance)
    if len(planes) > 1 and min(planes[-1]) < min(planes[0]):
        planes.reverse()
    plane_of = {number: index for index, plane in enumerate(planes) for number in plane}
    plane_mm = [float(np.mean([distance[n] for n in plane])) for plane in planes]
    origin = plane_mm[0] if plane_mm else 0.0
    # Rounded to the 0.1 micrometre: DICOM's decimal strings carry no more, and the
    # projection's float noise (9.999999999999998) would only distract.
    position_mm = [round(abs(mm - origin), 4) for mm in plane_mm]

    positions: dict[int, int | None] = {}
    for frame in frames:
        if frame.number in plane_of:
            positions[frame.number] = plane_of[frame.number]
            continue
        missing = _missing_position_tags(frame, normal)
        frame_cycle = _cycle_of(frame, cycle)
        # The arithmetic may only place a frame among the positions the study's files can
        # fill: a stray file numbered far out (9999.dcm) would otherwise open an empty stack of
        # hundreds of positions (and a cine of as many frames with `frames: all`).
        limit = max(len(planes), -(-len(frames) // frame_cycle)) if frame_cycle else 0
        if frame_cycle is None:
            positions[frame.number] = None
            note(frame, f"{missing}: position unknown")
        elif (frame.number - 1) // frame_cycle >= limit:
            positions[frame.number] = None
            note(
                frame,
                f"{missing}: position unknown (its image number gives position "
                f"{(frame.number - 1) // frame_cycle}, beyond the {limit} positions the "
                f"study's {len(frames)} files can fill)",
            )
        else:
            position = (frame.number - 1) // frame_cycle
            positions[frame.number] = position
            note(
                frame,
                f"{missing}: position {position} from its image number, "
                f"(n - 1) // {frame_cycle} (CardiacNumberOfImages)",
            )

    # Phases: rank by TriggerTime within each position.
    by_position: dict[int, list[CineFrame]] = {}
    for frame in frames:
        if positions[frame.number] is not None:
            by_position.setdefault(positions[frame.number], []).append(frame)
    for frame in frames:
        trigger = frame.header.trigger_time if frame.header is not None else None
        cine.places[frame.number] = FramePlace(trigger_time=trigger)
    usual_count = cycle or _common(sorted(len(members) for members in by_position.values()))
    for position, members in sorted(by_position.items()):
        timed = sorted(
            (f for f in members if f.header is not None and f.header.trigger_time is not None),
            key=lambda f: (f.header.trigger_time, f.number),
        )
        # A frame without TriggerTime takes its image-number phase, and the timed frames
        # keep their order around it (ranks skip the phases so taken).
        order: list[CineFrame] = list(timed)
        for frame in members:
            if frame in timed:
                continue
            frame_cycle = _cycle_of(frame, cycle)
            if frame_cycle is None:
                note(frame, "no TriggerTime: phase unknown")
                continue
            phase = (frame.number - 1) % frame_cycle
            order.insert(min(phase, len(order)), frame)
            note(
                frame,
                f"no TriggerTime: phase {phase} from its image number, "
                f"(n - 1) % {frame_cycle} (CardiacNumberOfImages)",
            )
        phase_of = {frame.number: rank for rank, frame in enumerate(order)}
        for frame in members:
            mm = position_mm[position] if position < len(position_mm) else None
            cine.places[frame.number] = FramePlace(
                position, mm, phase_of.get(frame.number), cine.places[frame.number].trigger_time
            )
        _check_frame_count(study_id, cine, position, members, usual_count, cycle is not None)

    for frame in frames:
        if frame.number in missing_tags:
            warn(frame, "cine_tags_missing", "; ".join(missing_tags[frame.number]))
    _check_arithmetic(frames, cine, cycle, warn)
    _check_spacing(study_id, cine, frames, planes, position_mm)
    return cine


def _planes(distance: dict[int, float]) -> list[list[int]]:
    """Image numbers grouped by plane (distances within :data:`SAME_PLANE_MM` of the
    previous), planes in increasing distance, numbers sorted."""
    planes: list[list[int]] = []
    last = None
    for number, mm in sorted(distance.items(), key=lambda item: (item[1], item[0])):
        if last is None or mm - last > SAME_PLANE_MM:
            planes.append([])
        planes[-1].append(number)
        last = mm
    return [sorted(plane) for plane in planes]


def _check_frame_count(study_id, cine, position, members, expected, stated) -> None:
    """``cine_frame_count`` when a position holds another number of frames than
    CardiacNumberOfImages (``stated``) or, without it, than most positions."""
    if expected is not None and len(members) != expected:
        first = min(members, key=lambda frame: frame.number)
        numbers = sorted(frame.number for frame in members)
        cine.problems.append(
            Problem(
                study_id,
                first.path,
                "cine_frame_count",
                f"position {position} (images {_ranges(numbers)}) holds {len(members)} frames, "
                f"{'CardiacNumberOfImages is' if stated else 'most positions hold'} {expected}: "
                f"its phases are the ranks of its "
                f"{len(members)} TriggerTimes",
                first.number,
            )
        )


def _check_arithmetic(frames, cine, cycle, warn) -> None:
    """``cine_order_mismatch`` where image-number arithmetic with CardiacNumberOfImages
    gives another position or phase than the tags (which are used)."""
    for frame in frames:
        frame_cycle = _cycle_of(frame, cycle)
        place = cine.places[frame.number]
        if frame_cycle is None or place.position is None or place.phase is None:
            continue
        position, phase = (frame.number - 1) // frame_cycle, (frame.number - 1) % frame_cycle
        if (position, phase) != (place.position, place.phase):
            warn(
                frame,
                "cine_order_mismatch",
                f"its tags place it at position {place.position}, phase {place.phase}; its image "
                f"number with CardiacNumberOfImages {frame_cycle} at position {position}, phase "
                f"{phase}: the tags' are used",
            )


def _check_spacing(study_id, cine, frames, planes, position_mm) -> None:
    """The study's spacing (median step between adjacent positions), and
    ``cine_spacing_mismatch`` for uneven steps and for a SpacingBetweenSlices that differs."""
    if len(planes) < 2:
        return
    steps = np.diff(position_mm)
    spacing = round(float(np.median(steps)), 4)
    cine.spacing_mm = spacing
    by_number = {frame.number: frame for frame in frames}
    for index, step in enumerate(steps, start=1):
        if abs(step - spacing) > SPACING_TOLERANCE_MM:
            first = by_number[planes[index][0]]
            cine.problems.append(
                Problem(
                    study_id,
                    first.path,
                    "cine_spacing_mismatch",
                    f"position {index} lies {step:.2f} mm from position {index - 1}, the "
                    f"study's median step is {spacing:.2f} mm: each position keeps its own "
                    "distance (position_mm); volumes use the median step",
                    first.number,
                )
            )
    stated = _common(
        [f.header.geometry.spacing_between_slices for f in frames if f.header is not None]
    )
    if stated is not None and abs(stated - spacing) > SPACING_TOLERANCE_MM:
        first = by_number[planes[0][0]]
        cine.problems.append(
            Problem(
                study_id,
                first.path,
                "cine_spacing_mismatch",
                f"SpacingBetweenSlices is {stated:g} mm, ImagePositionPatient steps "
                f"{spacing:.2f} mm: the IPP spacing is used",
                first.number,
            )
        )


def _missing_position_tags(frame: CineFrame, normal) -> str:
    if frame.header is None:
        return "the header cannot be read"
    geometry = frame.header.geometry
    if normal is None:
        return "no usable ImageOrientationPatient in the study"
    if geometry.image_position is None:
        return "no ImagePositionPatient"
    return "no usable position tags"


def _cycle_of(frame: CineFrame, study_cycle: int | None) -> int | None:
    """The frame's own CardiacNumberOfImages, else the study's."""
    if frame.header is not None and frame.header.cardiac_images is not None:
        return frame.header.cardiac_images
    return study_cycle


def _common(values):
    """The most common of the values that are not None (ties: the first seen), or None."""
    known = [value for value in values if value is not None]
    if not known:
        return None
    counts = Counter(known)
    return max(counts, key=lambda value: (counts[value], -known.index(value)))


def _rounded(orientation):
    return None if orientation is None else tuple(round(v, 4) for v in orientation)


def _same(one, other) -> bool:
    return max(abs(a - b) for a, b in zip(one, other, strict=True)) <= _ORIENTATION_TOLERANCE


def _text(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _ranges(numbers: list[int]) -> str:
    """``1-20`` for a consecutive run, else the numbers."""
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
    return ", ".join(map(str, numbers))
