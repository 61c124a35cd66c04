# Configuration, link table and the immutability check: all run when the workflow is parsed,
# so that a bad config value, an unusable link.csv or a changed finished version stops the run
# before any job.

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from workflow_scripts.build_plan import plan_build, print_summary
from workflow_scripts.config import command_line_values_typed, config_problems
from workflow_scripts.layout import DATASET_PLOTS
from workflow_scripts.raw.links import STUDY_ID_PATTERN
from workflow_scripts.version_lock import (
    LOCK_NAME,
    VersionLockedError,
    acquire_version_lock,
    release_version_lock,
)

# The schema holds every key's meaning and default; validating fills the defaults in. A wrong
# value stops the run with one short paragraph (the full report goes to the file named).
command_line_values_typed(config)
if problems := config_problems(config, ".snakemake/log/config_errors.txt"):
    raise WorkflowError(problems)
validate(config, schema="../schemas/config.schema.yaml")

PLAN = plan_build(config)
LAYOUT = PLAN.layout
STUDIES = PLAN.studies

# Where files go (workflow_scripts/layout.py names each of them):
#   {out_dir}/{version}/        the dataset: manifest, index and validation tables, per
#                               study pairs/{study}.parquet, slices/{study}/, qc/{study}/,
#                               and the version's qc/review.html and qc/plots/
#   {out_dir}/work/{version}/   study records for the aggregate steps, report material
#   {out_dir}/logs/{version}/   one log per job
VERSION_DIR = str(LAYOUT.version_dir)
WORK_DIR = str(LAYOUT.work_dir)
LOG_DIR = str(LAYOUT.log_dir)
MANIFEST = str(LAYOUT.manifest)
INDEX = str(LAYOUT.index_file)
VALIDATION = str(LAYOUT.validation_file)
# The version's own QC files (rule plot_qc), written before the manifest, which lists them.
VERSION_QC = [str(path) for path in LAYOUT.version_qc]


wildcard_constraints:
    study=STUDY_ID_PATTERN,


def raw_data_input(wildcards):
    """The generated phantom, for ordering only; real data is tracked by study_fingerprint."""
    return [ancient(str(LAYOUT.data_dir))] if LAYOUT.phantom else []


def study_fingerprint(wildcards):
    """Stands in for the study's raw files (names, sizes and modification times), which are
    not declared as inputs (see the README's design notes). It reruns the study when they
    change only under Snakemake's `params` rerun trigger, one of its defaults."""
    return PLAN.fingerprint(wildcards.study)


def study_link(wildcards):
    return PLAN.link_params(wildcards.study)


def study_exclusions(wildcards):
    """The study's reviewed exclusions (config `exclusions`): changing a decision reruns
    exactly the studies it concerns."""
    return PLAN.exclusions_params(wildcards.study)


def run_build_study(params, log):
    """The body of build_study. With threads (the default profile) it runs in Snakemake's own
    process and hands the work to a pool of worker processes (see job_pool.py); in a
    per-job Snakemake subprocess it simply runs here."""
    from snakemake_interface_executor_plugins.settings import ExecMode
    from workflow_scripts.job_pool import run_in_pool
    from workflow_scripts.study.build import build_study_job

    job = (params.link, LAYOUT, params.options, log[0], params.exclusions)
    if workflow.exec_mode == ExecMode.SUBPROCESS:
        build_study_job(*job)
    else:
        run_in_pool(build_study_job, *job, workers=workflow.cores)


def hold_version_lock():
    """Refuse to start when another build of this version runs, from any working folder
    (Snakemake's own lock covers only this working folder). Called when jobs are about to run,
    so dry runs, reports and no-op reruns never take it."""
    try:
        acquire_version_lock(LAYOUT)
    except VersionLockedError as error:
        raise WorkflowError(str(error)) from None


def let_go_of_version_lock():
    release_version_lock(LAYOUT.work_dir / LOCK_NAME)
