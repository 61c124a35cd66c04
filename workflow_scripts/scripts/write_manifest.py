"""Snakemake script: manifest.json, written last; it marks the version finished."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
# The repository's packages, also where the project is not installed (the rules' conda env).
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from workflow_scripts.dataset.manifest import (
    config_file_entry,
    derived_from_entry,
    exclusions_entry,
    recorded_config,
    write_dataset_manifest,
)
from workflow_scripts.job_failures import job_failures
from workflow_scripts.layout import Layout

config = recorded_config(snakemake.config)
layout = Layout.from_config(config)
with job_failures(snakemake.rule, layout.out_dir):
    write_dataset_manifest(
        layout=layout,
        config=config,
        batch_records=snakemake.input.batches,
        index_path=snakemake.input.index,
        validation_path=snakemake.input.validation,
        measures_path=snakemake.input.get("measures"),
        frames_path=snakemake.input.get("frames"),
        qc_outputs=snakemake.input.qc,
        exclusions=exclusions_entry(snakemake.config),
        splits_file=config_file_entry(snakemake.config, "splits_file"),
        derived_from=derived_from_entry(snakemake.config),
    )
