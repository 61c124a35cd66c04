"""Snakemake script: write the built-in phantom raw dataset (rule generate_phantom)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.files import staged_directory
from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

spec = PhantomSpec(**snakemake.params.spec)
with (
    job_failures(snakemake.rule, Layout.from_config(snakemake.config).out_dir),
    staged_directory(snakemake.output[0]) as staging,
):
    write_phantom(staging, spec)
print(f"phantom written: {spec}", file=sys.stderr)
