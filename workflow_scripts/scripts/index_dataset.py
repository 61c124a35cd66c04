"""Snakemake script: index.parquet and validation.parquet from the study records."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from workflow_scripts.dataset_index import write_dataset_tables
from workflow_scripts.links import StudyLink

write_dataset_tables(
    record_paths=snakemake.input.records,
    links=[StudyLink(**link) for link in snakemake.params.links],
    data_dir=snakemake.params.data_dir,
    contour_kinds=tuple(snakemake.params.contours),
    version=snakemake.params.version,
    fractions=snakemake.params.splits,
    seed=snakemake.params.split_seed,
    index_path=snakemake.output.index,
    validation_path=snakemake.output.validation,
)
