"""Snakemake script: index.parquet, validation.parquet, measures.parquet and frames.parquet
from the batches' tables."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.dataset.batch_tables import read_version_tables
from workflow_scripts.dataset.tables import BATCH_TABLES_USED, write_dataset_tables
from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import read_link_json

layout = Layout.from_config(snakemake.config)
with job_failures(snakemake.rule, layout.out_dir):
    write_dataset_tables(
        tables=read_version_tables(layout, snakemake.input.batches, BATCH_TABLES_USED),
        links=read_link_json(snakemake.input.links),
        data_dir=layout.data_dir,
        contour_kinds=tuple(snakemake.params.contours),
        version=snakemake.params.version,
        fractions=snakemake.params.splits,
        seed=snakemake.params.split_seed,
        index_path=snakemake.output.index,
        validation_path=snakemake.output.validation,
        assigned=snakemake.params.split_assignment,
        measures_path=snakemake.output.get("measures"),
        frames_path=snakemake.output.get("frames"),
    )
