"""The build plan: what the Snakefile works out before any job runs.

:func:`plan_build` takes the validated configuration, checks what its schema cannot
(:func:`~workflow_scripts.config.check_config`), reads and checks link.csv, and refuses to
rebuild a finished version differently (:mod:`~workflow_scripts.dataset.version_guard`). Any of
these failing stops the run with one clear message (a WorkflowError), never a traceback from
deep inside a job. The resulting :class:`BuildPlan` is what the rule files read: the layout, the
studies, their batches (:mod:`~workflow_scripts.batches`), and each batch job's parameters.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snakemake.exceptions import WorkflowError

from loader.manifest import top_outputs
from workflow_scripts.batches import assign_batches
from workflow_scripts.config import FOLLOW_SYMLINKS, ConfigError, check_config
from workflow_scripts.dataset.manifest import config_file_entry, exclusions_entry
from workflow_scripts.dataset.splits import SplitsFileError, read_splits_file, study_splits
from workflow_scripts.dataset.version_guard import VersionChangedError, check_finished_version
from workflow_scripts.layout import VERSION_QC_NAMES, Layout, RawLayout
from workflow_scripts.qc.exclusions import (
    Exclusion,
    ExclusionsError,
    check_exclusions,
    read_exclusions,
)
from workflow_scripts.raw.links import LinkTableError, StudyLink, read_link_table
from workflow_scripts.raw.listing import StudyListing, list_study, read_file_stats
from workflow_scripts.raw.phantom import PhantomSpec
from workflow_scripts.study.frames import FRAMES_ALL

__all__ = ["BuildPlan", "RunMode", "parse_processes", "plan_build", "print_summary", "run_mode"]


class RunMode(enum.Enum):
    """What a run of the workflow does with its version, decided once when it is parsed.

    - ``BUILD``: the version is not finished; every rule is read and the target is the
      manifest and the report's material.
    - ``FINISHED``: the version is finished and is never built again; its target is its
      manifest, which exists, and no build rule is read, so Snakemake has nothing it could
      rerun, whatever its rerun triggers say (a newer script, a touched raw file, another
      ``studies_per_job``).
    - ``REPORT``: ``snakemake --report`` on a finished version; every rule is read so that the
      report's picture of the workflow shows every stage. A report runs no job.
    """

    BUILD = "build"
    FINISHED = "finished"
    REPORT = "report"

    @property
    def builds(self) -> bool:
        """Whether the build rules are read."""
        return self is not RunMode.FINISHED


def run_mode(finished: bool, argv: Sequence[str]) -> RunMode:
    """The run's :class:`RunMode`: ``finished`` says whether the version has a manifest (and
    passed the immutability check); ``argv``, Snakemake's command line, whether it makes a
    report. Snakemake 9 does not tell a workflow, while it is read, what the run will do; its
    command line is the one place that says it. ``--report-after-run`` builds first, so it is
    a build of a finished version (no build rule), never a report's reading of every rule."""
    if not finished:
        return RunMode.BUILD
    report = any(arg == "--report" or arg.startswith("--report=") for arg in argv)
    if report and "--report-after-run" not in argv:
        return RunMode.REPORT
    return RunMode.FINISHED


@dataclass
class BuildPlan:
    """The checked build: where things go, which studies there are, how they are batched,
    and what each job is given.

    Each study's folders are listed, and the files its build reads stat'ed, once per run
    (:meth:`listing`, :meth:`file_stats`): the immutability check and the batch fingerprints
    share them, and Snakemake evaluates params more than once.
    """

    config: dict
    layout: Layout
    links: list[StudyLink]
    exclusions: list[Exclusion] = field(default_factory=list)
    #: each study's split from config ``splits_file``, by study id; None for hash splits
    split_assignment: dict[str, str] | None = None
    #: the version has a manifest, and its config and inputs passed the immutability check
    finished: bool = False
    #: that manifest's ``outputs`` directly in the version folder (relative paths: the
    #: tables), as :func:`loader.manifest.top_outputs` reads them (not the ~24 per study)
    finished_outputs: frozenset[str] = frozenset()
    studies: dict[str, StudyLink] = field(init=False)
    batches: dict[str, tuple[str, ...]] = field(init=False)
    _listings: dict[tuple[str, tuple[str, ...], bool], StudyListing] = field(
        init=False, default_factory=dict
    )
    _stats: dict[str, tuple[int, int]] = field(init=False, default_factory=dict)
    _fingerprints: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.studies = {link.patient_id: link for link in self.links}
        self.batches = assign_batches(self.studies, self.config["studies_per_job"])

    @property
    def contour_kinds(self) -> tuple[str, ...]:
        return tuple(self.config["contours"])

    @property
    def options_params(self) -> dict:
        """The config sections that shape a study's build, as plain data for a job's params
        (``resample`` only when set, so that native builds keep their params; check_config
        gave it one spelling).

        ``follow_symlinks`` is not among them: the job takes it from the config. The batch
        fingerprint (its studies' listings under that rule, and the files they read) changes
        exactly when the rule changes what a batch reads, and a new parameter would make
        Snakemake rerun every batch of versions built before the key existed."""
        options = {key: self.config[key] for key in ("contours", "checks", "qc")}
        if self.config.get("resample"):
            options["resample"] = self.config["resample"]
        if self.all_frames:  # only then: labelled builds keep the params they always had
            options["frames"] = self.config["frames"]
        return options

    @property
    def all_frames(self) -> bool:
        """Whether the version stores every frame (config ``frames: all``): cines/ and
        frames.parquet (docs/frames.md)."""
        return self.config.get("frames") == FRAMES_ALL

    def batch_studies(self, batch: str) -> list[list[str]]:
        """The batch's studies as [patient_id, original_id] pairs, sorted by study id."""
        return [[study, self.studies[study].original_id] for study in self.batches[batch]]

    @property
    def has_measures(self) -> bool:
        """Whether the version has (or will have) measures.parquet: every version but one
        finished before it existed."""
        if not self.finished:
            return True
        return self.layout.in_version(self.layout.measures_file) in self.finished_outputs

    @property
    def follow_symlinks(self) -> bool:
        return bool(self.config.get("follow_symlinks", FOLLOW_SYMLINKS))

    @property
    def job_options(self) -> dict:
        """What a batch job builds its studies with (rule build_studies's script adds
        ``follow_symlinks`` from the config to :attr:`options_params` in the same way)."""
        return {**self.options_params, "follow_symlinks": self.follow_symlinks}

    def listing(
        self,
        link: StudyLink,
        kinds: tuple[str, ...] | None = None,
        follow_symlinks: bool | None = None,
    ) -> StudyListing:
        """The study's folder listing (:func:`~workflow_scripts.raw.listing.list_study`), by
        default with the configured contour kinds and ``follow_symlinks``."""
        kinds = self.contour_kinds if kinds is None else kinds
        follow = self.follow_symlinks if follow_symlinks is None else follow_symlinks
        key = (link.patient_id, kinds, follow)
        if key not in self._listings:
            self._listings[key] = list_study(link, self.layout.data_dir, kinds, follow)
        return self._listings[key]

    def file_stats(self, relpaths: list[str]) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) of raw files by relative path, each stat'ed once per run; files
        that cannot be stat'ed are left out."""
        missing = [relpath for relpath in relpaths if relpath not in self._stats]
        self._stats.update(read_file_stats(self.layout.data_dir, missing))
        return {relpath: self._stats[relpath] for relpath in relpaths if relpath in self._stats}

    def fingerprint(self, study: str) -> str:
        """A digest that changes whenever the files the study's build reads may have: its
        folder listing and the size and modification time of every file it reads."""
        if study not in self._fingerprints:
            listing = self.listing(self.studies[study])
            read = listing.files_read()
            stats = self.file_stats(read)
            parts = [listing.digest()]
            parts += [f"{relpath}:{stats.get(relpath)}" for relpath in read]
            self._fingerprints[study] = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        return self._fingerprints[study]

    def batch_fingerprint(self, batch: str) -> str:
        """Stands in for the raw files of the batch's studies, which are not declared as job
        inputs (see the README's design notes): it changes when any of them may have."""
        if self.layout.phantom:
            return "phantom"  # generated by this workflow; tracked through generate_phantom
        members = "\n".join(self.fingerprint(study) for study in self.batches[batch])
        return hashlib.sha256(members.encode()).hexdigest()

    def labelled_slices(self, study: str) -> set[int]:
        """The study's slice numbers that have an i-contour file (from the file names)."""
        if self.layout.phantom and not self.layout.data_dir.exists():
            return PhantomSpec(**self.config["phantom"]).labelled_slices(study)
        return self.listing(self.studies[study]).labelled_slices()

    def ocontour_slices(self, study: str) -> set[int]:
        """The study's slice numbers that have an o-contour file (from the file names)."""
        if self.layout.phantom and not self.layout.data_dir.exists():
            return PhantomSpec(**self.config["phantom"]).ocontour_slices(study)
        listing = self.listing(self.studies[study])
        return {number for kind, number, _ in listing.contour_files() if kind == "o"}

    def exclusions_params(self, study: str) -> list[dict]:
        """The reviewed exclusions of one study, by slice (part of its batch job's params: a
        changed decision reruns exactly the batches it concerns)."""
        decisions = [item for item in self.exclusions if item.study_id == study]
        ordered = sorted(decisions, key=lambda item: (item.slice, item.contour))
        return [item.as_params() for item in ordered]

    def batch_exclusions(self, batch: str) -> dict[str, list[dict]]:
        """The reviewed exclusions of the batch's studies that have any, by study id."""
        by_study = {study: self.exclusions_params(study) for study in self.batches[batch]}
        return {study: decisions for study, decisions in by_study.items() if decisions}

    @property
    def all_exclusions_params(self) -> list[dict]:
        """Every reviewed exclusion, by study and slice (what the review sheet shows)."""
        ordered = sorted(
            self.exclusions, key=lambda item: (item.study_id, item.slice, item.contour)
        )
        return [item.as_params() for item in ordered]

    @property
    def exclusions_input(self) -> dict | None:
        """The exclusions file's manifest entry (see
        :func:`~workflow_scripts.dataset.manifest.exclusions_entry`), or None without one."""
        return exclusions_entry(self.config)

    @property
    def splits_file_input(self) -> dict | None:
        """The splits file's manifest entry (like :attr:`exclusions_input`), or None."""
        return config_file_entry(self.config, "splits_file")

    @property
    def raw_listing_inputs(self) -> list[str]:
        """Folders whose listing the index step reads (to find unlisted studies)."""
        if self.layout.phantom:
            return [str(self.layout.data_dir)]
        folders = [self.layout.data_dir / name for name in RawLayout.STUDY_FOLDERS]
        return [str(folder) for folder in folders if folder.is_dir()]


def plan_build(config: dict, processes: int = 1) -> BuildPlan:
    """The plan of a build whose ``config`` was validated against the schema (defaults filled);
    the immutability check of a finished version runs in up to ``processes`` processes
    (Snakemake's ``--cores``; see :mod:`~workflow_scripts.dataset.raw_state`).

    Raises WorkflowError with one clear message for a config value the schema cannot judge, an
    unusable link.csv, exclusions or splits file, or a finished version that would be built
    differently.
    """
    try:
        layout = check_config(config)
        if layout.phantom:
            spec = PhantomSpec(**config["phantom"])
            links = [
                StudyLink(patient_id, original_id, line)
                for line, (patient_id, original_id) in enumerate(spec.study_ids(), start=2)
            ]
        else:
            links = read_link_table(layout.raw.link_csv)
        _refuse_reserved_ids(layout, links)
        plan = BuildPlan(config, layout, links)
        if config.get("exclusions"):
            path = config["exclusions"]
            plan.exclusions = read_exclusions(path)
            with_o = plan.ocontour_slices if "o" in plan.contour_kinds else None
            check_exclusions(path, plan.exclusions, plan.studies, plan.labelled_slices, with_o)
        if config.get("splits_file"):
            plan.split_assignment = study_splits(read_splits_file(config["splits_file"]), links)
        # Its listings and stats are not shared with the plan's: a finished version computes no
        # fingerprint, and keeping 100,000 listings would cost more memory than they save.
        manifest = check_finished_version(layout, config, links, processes=processes)
        plan.finished = manifest is not None
        if manifest is not None:  # manifest.json's own record: no table of 2 million rows read
            plan.finished_outputs = frozenset(top_outputs(layout.version_dir, manifest))
    except (
        ConfigError,
        LinkTableError,
        ExclusionsError,
        SplitsFileError,
        VersionChangedError,
    ) as error:
        raise WorkflowError(str(error)) from None
    return plan


def parse_processes(workflow) -> int:
    """How many processes the checks made while the workflow is parsed may use: Snakemake's
    ``--cores`` (``workflow.cores``), at most the machine's CPUs; 1 when the run sets none."""
    try:
        cores = int(workflow.cores)
    except (WorkflowError, TypeError, ValueError):
        return 1
    return max(1, min(cores, os.cpu_count() or 1))


def _refuse_reserved_ids(layout: Layout, links: list[StudyLink]) -> None:
    """A study's QC folder must not collide with the version's own QC files (qc/review.html,
    qc/plots/)."""
    for link in links:
        if link.patient_id in VERSION_QC_NAMES:
            source = "the phantom" if layout.phantom else layout.raw.link_csv
            raise LinkTableError(
                f"{source}: line {link.line}: patient_id {link.patient_id!r} is reserved for "
                "the version's QC files (qc/" + ", qc/".join(VERSION_QC_NAMES) + ")"
            )


def print_summary(manifest_path: str | Path) -> None:
    """Print the counts of a finished build: studies, files, samples, problems by code (or,
    after a run that stopped short of the manifest, e.g. with ``--until``, that it did)."""
    if not Path(manifest_path).is_file():
        print(f"{manifest_path} is not written yet: the version is not finished.")
        return
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    counts = manifest["counts"]
    version_dir = Path(manifest_path).parent
    lines = [
        f"Dataset {version_dir}: {counts['studies']} studies listed "
        f"({counts['studies_with_samples']} with samples), {counts['dicoms']} DICOM files, "
        f"{counts['contour_files']} contour files -> {counts['samples']} samples.",
    ]
    for kind, count in counts.get("contour_files_not_used", {}).items():
        if count:
            lines.append(
                f"Not used: {count} {kind}-contour files (config contours: "
                f"{manifest['config']['contours']}; add {kind} to build them)."
            )
    if counts["problems"]:
        problems = ", ".join(f"{code} {n}" for code, n in counts["problems"].items())
        lines.append(f"Problems ({version_dir / 'validation.parquet'}): {problems}.")
    else:
        lines.append("No problems found.")
    print("\n".join(lines))
