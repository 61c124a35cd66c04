"""Snakemake script: gather the studies' report pages and the flagged overlays for the report
(rule summarize_qc)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout
from workflow_scripts.qc.summary import write_report_material
from workflow_scripts.raw.links import read_link_json

layout = Layout.from_config(snakemake.config)
with job_failures(snakemake.rule, layout.out_dir):
    write_report_material(
        layout=layout,
        index_path=snakemake.input.index,
        studies=sorted(link.patient_id for link in read_link_json(snakemake.input.links)),
        studies_dir=snakemake.output.studies,
        flagged_dir=snakemake.output.flagged,
    )
