"""Where a build reads and writes: the one place that names every path of a build.

:class:`RawLayout` names what a build reads: the raw data folder in the Sunnybrook layout
(``link.csv``, ``dicoms/``, ``contourfiles/``; ``../shared/DESIGN.md``). :class:`Layout` names
what it writes, and gives the raw folder's :class:`RawLayout` as ``raw``.

``{out_dir}/{version}/`` holds the dataset and nothing else (``../shared/DESIGN.md`` fixes its
layout); beside it, ``{out_dir}/work/{version}/`` holds the study and batch records the
aggregate steps read, each study's report page, and the report's material, and
``{out_dir}/logs/{version}/`` the logs. Paths
are as configured: relative to the working folder unless absolute. Methods taking a ``study``
accept the ``"{study}"`` wildcard (and those taking a ``batch`` the ``"{batch}"`` wildcard), so
the rule files declare their outputs with the same patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONTACT_SHEET",
    "DATASET_PLOTS",
    "RESERVED_NAMES",
    "STUDY_PLOT",
    "VERSION_QC_NAMES",
    "Layout",
    "RawLayout",
]

#: Folder names under out_dir that belong to the workflow, so no version may take them.
RESERVED_NAMES = ("logs", "work")
#: A study's contact sheet, in its QC folder.
CONTACT_SHEET = "contact_sheet.jpg"
#: A study's plot of mask areas against slice number, in its QC folder.
STUDY_PLOT = "mask_areas.png"
#: The version's own QC files in ``qc/``, beside the studies' folders: the review sheet and the
#: plots (so no study may take these names).
VERSION_QC_NAMES = ("review.html", "plots")
#: The dataset-wide plots in ``qc/plots/``, by file stem, with what each shows.
DATASET_PLOTS = {
    "mask_areas": "distribution of i-mask areas",
    "area_to_median": "distribution of i-mask area / study median",
    "intensities": "image intensities per study",
}


@dataclass(frozen=True)
class RawLayout:
    """The raw data folder ``root`` (config ``data_dir``, or the generated phantom)::

        link.csv                        patient_id,original_id
        dicoms/<patient_id>/<n>.dcm     one 2D slice per file, n = image number
        contourfiles/<original_id>/{i,o}-contours/IM-0001-<nnnn>-{i,o}contour-manual.txt

    The ``*_relpath`` methods give paths relative to ``root``, POSIX: how the manifest, the
    listings and the problem rows name inputs. Ids are plain folder names, checked when
    link.csv is read (:mod:`~workflow_scripts.raw.links`)."""

    root: Path

    LINK_CSV = "link.csv"
    DICOMS = "dicoms"
    CONTOURS = "contourfiles"
    #: The folders holding one sub-folder per study.
    STUDY_FOLDERS = (DICOMS, CONTOURS)

    @property
    def link_csv(self) -> Path:
        return self.root / self.LINK_CSV

    def path(self, relpath: str) -> Path:
        """The path of an input named relative to ``root``."""
        return self.root / relpath

    @classmethod
    def dicom_dir_relpath(cls, patient_id: str) -> str:
        return f"{cls.DICOMS}/{patient_id}"

    @classmethod
    def dicom_relpath(cls, patient_id: str, image_number: int) -> str:
        return f"{cls.dicom_dir_relpath(patient_id)}/{image_number}.dcm"

    @classmethod
    def contour_dir_relpath(cls, original_id: str) -> str:
        return f"{cls.CONTOURS}/{original_id}"

    @staticmethod
    def contour_kind_folder(kind: str) -> str:
        """The sub-folder holding contours of ``kind``: ``i-contours`` or ``o-contours``."""
        return f"{kind}-contours"

    @classmethod
    def contour_kind_relpath(cls, original_id: str, kind: str) -> str:
        return f"{cls.contour_dir_relpath(original_id)}/{cls.contour_kind_folder(kind)}"


@dataclass(frozen=True)
class Layout:
    """The build's folders (``data_dir``: the raw data, or the generated phantom when
    ``phantom``) and every path inside them."""

    data_dir: Path
    out_dir: Path
    version: str
    phantom: bool

    @classmethod
    def from_config(cls, config: dict) -> Layout:
        """The layout of a validated configuration (``data_dir`` empty: the phantom)."""
        out_dir = Path(config["out_dir"])
        if config["data_dir"]:
            return cls(Path(config["data_dir"]), out_dir, config["version"], phantom=False)
        # "_" cannot start a version name, so the phantom never collides with a version.
        return cls(out_dir / "work" / "_phantom", out_dir, config["version"], phantom=True)

    @property
    def raw(self) -> RawLayout:
        """The raw data folder (``data_dir``) the build reads."""
        return RawLayout(self.data_dir)

    # ------------------------------------------------------------------- top-level folders

    @property
    def version_dir(self) -> Path:
        return self.out_dir / self.version

    @property
    def work_dir(self) -> Path:
        return self.out_dir / "work" / self.version

    @property
    def log_dir(self) -> Path:
        return self.out_dir / "logs" / self.version

    @property
    def link_table(self) -> Path:
        """link.csv as checked: its studies sorted by id (rule validate_link_table)."""
        return self.work_dir / "link_table.json"

    @property
    def manifest(self) -> Path:
        return self.version_dir / "manifest.json"

    @property
    def index_file(self) -> Path:
        return self.version_dir / "index.parquet"

    @property
    def validation_file(self) -> Path:
        return self.version_dir / "validation.parquet"

    @property
    def measures_file(self) -> Path:
        """Per study EDV, ESV, EF, LV mass (``docs/cine.md``); versions finished before it
        existed have none."""
        return self.version_dir / "measures.parquet"

    @property
    def frames_file(self) -> Path:
        """With ``frames: all``: one row per (study, position, phase) (``docs/frames.md``)."""
        return self.version_dir / "frames.parquet"

    # ------------------------------------------------------------------------- per study

    def cine_file(self, study: str) -> Path:
        """With ``frames: all``: the study's every frame, ``cines/{study}.npy`` (P, T, H, W)."""
        return self.version_dir / "cines" / f"{study}.npy"

    def pairs_file(self, study: str) -> Path:
        """The study's pairing table."""
        return self.version_dir / "pairs" / f"{study}.parquet"

    def slices_dir(self, study: str) -> Path:
        return self.version_dir / "slices" / study

    def qc_dir(self, study: str) -> Path:
        return self.version_dir / "qc" / study

    def sample_file(self, study: str, slice_number: int) -> Path:
        """The npz of one sample: ``slices/{study}/{slice:04d}.npz``."""
        return self.slices_dir(study) / f"{slice_number:04d}.npz"

    def overlay_file(self, study: str, slice_number: int) -> Path:
        """The QC overlay of one sample: ``qc/{study}/{slice:04d}.png``."""
        return self.qc_dir(study) / f"{slice_number:04d}.png"

    def contact_sheet(self, study: str) -> Path:
        return self.qc_dir(study) / CONTACT_SHEET

    def study_plot(self, study: str) -> Path:
        """The study's mask areas against slice number: ``qc/{study}/mask_areas.png``."""
        return self.qc_dir(study) / STUDY_PLOT

    # --------------------------------------------------------- the version's own QC files

    @property
    def review_sheet(self) -> Path:
        """The review sheet of the whole version: ``qc/review.html``."""
        return self.version_dir / "qc" / VERSION_QC_NAMES[0]

    @property
    def plots_dir(self) -> Path:
        return self.version_dir / "qc" / VERSION_QC_NAMES[1]

    def dataset_plot(self, name: str) -> Path:
        """One of the :data:`DATASET_PLOTS`: ``qc/plots/<name>.png``."""
        return self.plots_dir / f"{name}.png"

    @property
    def version_qc(self) -> list[Path]:
        """The version's own QC files (rule plot_qc), which the manifest lists."""
        return [self.review_sheet, *(self.dataset_plot(name) for name in DATASET_PLOTS)]

    @property
    def report_dir(self) -> Path:
        """What only the report shows (outside the dataset), as rule summarize_qc gathers it:
        per-study entries, flagged slices."""
        return self.work_dir / "report"

    @property
    def report_studies(self) -> Path:
        """The studies' report entries, by split (rule summarize_qc)."""
        return self.report_dir / "studies"

    @property
    def report_flagged(self) -> Path:
        """The flagged slices' pictures, by problem code (rule summarize_qc)."""
        return self.report_dir / "flagged"

    @property
    def report_material(self) -> list[Path]:
        """What rule summarize_qc writes for the report."""
        return [self.report_studies, self.report_flagged]

    def report_page(self, study: str) -> Path:
        """The study's report entry (outside the dataset), written by its build beside its
        record: ``work/{version}/studies/{study}.html``."""
        return self.work_dir / "studies" / f"{study}.html"

    def study_log(self, study: str) -> Path:
        """The log of the study's build (its counts, problems and pydicom's warnings)."""
        return self.log_dir / "studies" / f"{study}.log"

    # ------------------------------------------------------------------------- per batch

    def batch_record(self, batch: str) -> Path:
        """The batch's record, written last by its job: the studies it built."""
        return self.work_dir / "batches" / f"{batch}.json"

    def batch_table(self, batch: str, name: str) -> Path:
        """The batch's share of the manifest's table ``name``, written by its job before its
        record (:mod:`workflow_scripts.dataset.batch_tables`)."""
        return self.work_dir / "batches" / f"{batch}.{name}.parquet"

    def batch_log(self, batch: str) -> Path:
        return self.log_dir / "build_studies" / f"{batch}.log"

    # ------------------------------------------------------------------------- per study

    def study_record(self, study: str) -> Path:
        """The study's record for the aggregate steps (samples, problems, digests)."""
        return self.work_dir / "studies" / f"{study}.json"

    def in_version(self, path: Path) -> str:
        """``path`` relative to the version folder, POSIX: how the dataset's tables name it."""
        return path.relative_to(self.version_dir).as_posix()
