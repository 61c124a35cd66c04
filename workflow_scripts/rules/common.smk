# Configuration, link table and the immutability check: all run when the workflow is parsed,
# so that a bad config value, an unusable link.csv or a changed finished version stops the run
# before any job.

import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from workflow_scripts.batches import BATCH_ID_PATTERN
from workflow_scripts.build_plan import (
    RunMode,
    parse_processes,
    plan_build,
    print_summary,
    run_mode,
)
from workflow_scripts.config import (
    ConfigError,
    command_line_values_typed,
    config_problems,
)
from workflow_scripts.console import quiet_console_after_interrupt, stop_run
from workflow_scripts.dataset.version_guard import (
    VersionChangedError,
    forced_rerun_refusal,
    refuse_missing_kept_files,
)
from workflow_scripts.job_failures import interrupted_message, note_interrupts
from workflow_scripts.layout import DATASET_PLOTS
from workflow_scripts.raw.links import STUDY_ID_PATTERN
from workflow_scripts.version_config import from_recorded_config, named_on_command_line
from workflow_scripts.version_lock import (
    LOCK_NAME,
    VersionLockedError,
    acquire_version_lock,
    release_version_lock,
)

# The schema holds every key's meaning and default; validating fills the defaults in. Every
# refusal here ends the run with its message alone (stop_run: no traceback).


def refuse_config_problems():
    """A wrong value stops the run with one short paragraph (the full report goes to the file
    named)."""
    if problems := config_problems(config, ".snakemake/log/config_errors.txt"):
        stop_run(problems)


# A version made from another (from_version), and a finished version, start from the
# configuration their manifest records; only the keys named on the command line change it
# (workflow_scripts/version_config.py). Either may bring keys to check again.
command_line_values_typed(config)
refuse_config_problems()
try:
    note = from_recorded_config(
        config,
        named_on_command_line(
            workflow.config_settings.config,
            workflow.config_settings.configfiles,
            [f"{workflow.basedir}/config.yaml", "config.yaml"],
        ),
    )
except ConfigError as error:
    stop_run(error)
if note:
    print(note, file=sys.stderr)
refuse_config_problems()
try:
    validate(config, schema="../schemas/config.schema.yaml")
    PLAN = plan_build(config, processes=parse_processes(workflow))
except WorkflowError as error:
    stop_run(error)
LAYOUT = PLAN.layout
STUDIES = PLAN.studies
BATCHES = PLAN.batches

# Where files go (workflow_scripts/layout.py names each of them):
#   {out_dir}/{version}/        the dataset: manifest, index and validation tables, per
#                               study pairs/{study}.parquet, slices/{study}/, qc/{study}/,
#                               and the version's qc/review.html and qc/plots/
#   {out_dir}/work/{version}/   batch and study records for the aggregate steps, report material
#   {out_dir}/logs/{version}/   one log per job and per study
VERSION_DIR = str(LAYOUT.version_dir)
WORK_DIR = str(LAYOUT.work_dir)
LOG_DIR = str(LAYOUT.log_dir)
MANIFEST = str(LAYOUT.manifest)
INDEX = str(LAYOUT.index_file)
VALIDATION = str(LAYOUT.validation_file)
# measures.parquet (named input/output `measures`), but for a version finished before it
# existed, which has none and never gets one.
MEASURES = {"measures": str(LAYOUT.measures_file)} if PLAN.has_measures else {}
# frames.parquet (named input/output `frames`) in a version of every frame (frames: all).
FRAMES = {"frames": str(LAYOUT.frames_file)} if PLAN.all_frames else {}
# What the aggregate steps wait for.
BATCH_RECORDS = [str(LAYOUT.batch_record(b)) for b in BATCHES]
# The version's own QC files (rule plot_qc), written before the manifest, which lists them.
VERSION_QC = [str(path) for path in LAYOUT.version_qc]


wildcard_constraints:
    study=STUDY_ID_PATTERN,
    batch=BATCH_ID_PATTERN,


# What this run does with its version (workflow_scripts/build_plan.py, RunMode): build it
# with every rule; once it is finished, nothing (the Snakefile then includes no build rules);
# or draw a report of it (every rule again, for the picture; a report runs no job).
MODE = run_mode(PLAN.finished, sys.argv)

# A finished version never changes (docs/next-version.md). Its config and inputs were just
# compared with its manifest. A missing file of its build is refused too: it says the version's
# folders were changed by hand (`python -m loader verify` checks the dataset itself).
if PLAN.finished:
    try:
        refuse_missing_kept_files(
            LAYOUT,
            [
                str(LAYOUT.link_table),
                INDEX,
                VALIDATION,
                *MEASURES.values(),
                *FRAMES.values(),
                *VERSION_QC,
            ],
        )
    except VersionChangedError as error:
        stop_run(error)


def dataset_target(wildcards):
    """What the run asks for: the manifest (the dataset is done) and the report's material;
    for a finished version only its manifest, which exists and which no rule read makes.

    A forced rerun (--forceall, --forcerun, --force) of a finished version is refused here:
    Snakemake sets its DAG settings only after reading the Snakefile, and evaluating the
    target is the first moment the workflow can read them (it changes nothing)."""
    if MODE is RunMode.FINISHED:
        settings = workflow.dag_settings
        if settings.forceall or settings.forcerun or settings.forcetargets:
            stop_run(forced_rerun_refusal(LAYOUT))
        return [MANIFEST]
    return [MANIFEST, *map(str, LAYOUT.report_material)]


def raw_data_input(wildcards):
    """The generated phantom, for ordering only; real data is tracked by batch_fingerprint."""
    return [ancient(str(LAYOUT.data_dir))] if LAYOUT.phantom else []


def link_table_input(wildcards):
    """link.csv, or the phantom folder that generate_phantom writes it into."""
    return str(LAYOUT.data_dir if LAYOUT.phantom else LAYOUT.raw.link_csv)


def batch_studies(wildcards):
    """The batch's studies, [patient_id, original_id] each, sorted by study id."""
    return PLAN.batch_studies(wildcards.batch)


def batch_fingerprint(wildcards):
    """Stands in for the raw files of the batch's studies (names, sizes and modification
    times), which are not declared as inputs (see the README's design notes). It reruns the
    batch when they change only under Snakemake's `params` rerun trigger, one of its
    defaults."""
    return PLAN.batch_fingerprint(wildcards.batch)


def batch_mem_mb(wildcards, threads):
    """MB for a batch job: 1000 per worker process (one study's slices in memory at a time)."""
    return 1000 * threads


def batch_runtime(wildcards, threads):
    """Minutes for a batch job (a cluster's time limit): 10, plus 10 s per study and worker,
    far above the 0.1-0.2 s a real study of ~20 labelled slices takes on one CPU."""
    return 10 + -(-10 * len(BATCHES[wildcards.batch]) // (60 * threads))


def batch_exclusions(wildcards):
    """The reviewed exclusions (config `exclusions`) of the batch's studies, by study:
    changing a decision reruns exactly the batches it concerns."""
    return PLAN.batch_exclusions(wildcards.batch)


def hold_version_lock():
    """Refuse to start when another build of this version runs, from any working folder
    (Snakemake's own lock covers only this working folder). Called when jobs are about to run,
    so dry runs, reports and no-op reruns never take it."""
    try:
        acquire_version_lock(LAYOUT)
    except VersionLockedError as error:
        stop_run(error)


def let_go_of_version_lock():
    release_version_lock(LAYOUT.work_dir / LOCK_NAME)


# Ctrl-Cs, noted from when the jobs start (onstart), so that onerror can tell an interrupted
# run, which it says in one line, from a failed one, whose jobs said why.
INTERRUPTS = {}


def note_interrupts_from_now():
    INTERRUPTS["noted"] = note_interrupts()
    quiet_console_after_interrupt(
        interrupted=lambda: bool(INTERRUPTS["noted"]),
        said=lambda: INTERRUPTS.get("said", False),
    )


def say_if_interrupted():
    if INTERRUPTS.get("noted"):
        print(
            interrupted_message(LAYOUT.version, LAYOUT.out_dir),
            file=sys.stderr,
            flush=True,
        )
        INTERRUPTS["said"] = True
