"""Snakemake script: the version's dataset plots and review sheet, into its qc/ folder (rule
plot_qc)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout
from workflow_scripts.qc.version_qc import write_version_qc

layout = Layout.from_config(snakemake.config)
with job_failures(snakemake.rule, layout.out_dir):
    write_version_qc(
        layout=layout,
        index_path=snakemake.input.index,
        validation_path=snakemake.input.validation,
        decisions=snakemake.params.exclusions,
        area_outlier_factor=snakemake.params.area_outlier_factor,
        measures_path=snakemake.input.get("measures"),
    )
