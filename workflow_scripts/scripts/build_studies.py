"""Snakemake script: build the studies of one batch (rule build_studies)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout
from workflow_scripts.study.batch import build_batch

layout = Layout.from_config(snakemake.config)
with job_failures(snakemake.rule, layout.out_dir):
    build_batch(
        batch=snakemake.wildcards.batch,
        studies=snakemake.params.studies,
        layout=layout,
        # follow_symlinks from the config, not a param (see BuildPlan.options_params)
        options={
            **snakemake.params.options,
            "follow_symlinks": snakemake.config["follow_symlinks"],
        },
        workers=snakemake.threads,
        record_path=snakemake.output.record,
        exclusions=snakemake.params.exclusions,
    )
