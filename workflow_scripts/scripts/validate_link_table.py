"""Snakemake script: link.csv checked and recorded, sorted by study id (rule
validate_link_table)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import read_link_table, write_link_json

layout = Layout.from_config(snakemake.config)
with job_failures(snakemake.rule, layout.out_dir):
    links = read_link_table(layout.raw.link_csv)
    write_link_json(links, snakemake.output[0])
print(f"{len(links)} studies listed", file=sys.stderr)
