# Configuration, link table and the immutability check: all run when the workflow is parsed,
# so that a bad config value, an unusable link.csv or a changed finished version stops the run
# before any job.

from workflow_scripts import parse_time

BUILD = parse_time.prepare_build(config)
LAYOUT = BUILD.layout
STUDIES = BUILD.studies
VERSION_DIR = str(LAYOUT.version_dir)
LOG_DIR = str(LAYOUT.log_dir)
WORK_DIR = str(LAYOUT.work_dir)
MANIFEST = f"{VERSION_DIR}/manifest.json"


wildcard_constraints:
    study=parse_time.STUDY_ID_PATTERN,


def raw_data_input(wildcards):
    """The generated phantom, for ordering only; real data is tracked by study_fingerprint."""
    return [ancient(str(LAYOUT.data_dir))] if LAYOUT.phantom else []


def study_fingerprint(wildcards):
    return BUILD.fingerprint(wildcards.study)


def study_link(wildcards):
    return BUILD.link_params(wildcards.study)


def run_build_study(params, log):
    """The body of build_study. With threads (the default profile) it runs in Snakemake's own
    process and hands the work to a pool of worker processes (see job_pool.py); in a
    per-job Snakemake subprocess it simply runs here."""
    from snakemake_interface_executor_plugins.settings import ExecMode
    from workflow_scripts.job_pool import run_in_pool
    from workflow_scripts.study_build import build_study_job

    job = (params.link, LAYOUT, params.options, log[0])
    if workflow.exec_mode == ExecMode.SUBPROCESS:
        build_study_job(*job)
    else:
        run_in_pool(build_study_job, *job, workers=workflow.cores)


def print_build_summary():
    parse_time.print_summary(MANIFEST)
