"""Snakemake script: flagged-slice sheets and the label-checks table for the report."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.qc.summary import write_qc_summary

write_qc_summary(
    index_path=snakemake.input.index,
    version_dir=Path(snakemake.input.index).parent,
    flagged_dir=snakemake.output.flagged,
    label_checks_path=snakemake.output.label_checks,
)
