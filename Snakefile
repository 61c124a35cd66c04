"""Sunnybrook-layout cardiac MRI -> a versioned dataset for 2D LV segmentation.

    link.csv, dicoms/, contourfiles/     (config data_dir; empty = built-in phantom)
      -> config, link.csv, exclusions,    checked when parsed, before any job rules/common.smk
         splits_file, finished version    (a finished version: no build rule is read)
      -> generate_phantom                 raw phantom, only without data_dir  raw_data.smk
      -> validate_link_table              the checked link table, recorded    raw_data.smk
      -> build_studies      per batch:    for each of its studies: its cine   studies.smk
                                          from the tags, pairs/, slices/
                                          (npz), qc/ (overlays, plot), cines/
                                          (frames: all), a record, a page
      -> index_dataset                    index.parquet, validation.parquet,  dataset.smk
                                          measures.parquet, frames.parquet
      -> plot_qc                          qc/review.html, qc/plots/           qc.smk
      -> write_manifest                   manifest.json: the version is done  dataset.smk
      -> summarize_qc                     the report's study entries, flags   qc.smk

The library behind the rules is workflow_scripts/, one package per stage (raw, study, dataset,
qc). Everything lands in {out_dir}/{version}/; see README.md and ../shared/DESIGN.md.
"""

from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# The working folder's config.yaml when it has one (a project folder, as catalog workflows are
# run), else the workflow's own; --configfile and --config override either. Relative paths in
# the config resolve against the working folder.
configfile: "config.yaml" if Path("config.yaml").is_file() else f"{workflow.basedir}/config.yaml"


include: "workflow_scripts/rules/common.smk"


# The build rules, read unless the version is finished: a finished version's run has nothing
# to build, so Snakemake has nothing it could rerun (common.smk, MODE).
if MODE.builds:

    include: "workflow_scripts/rules/raw_data.smk"
    include: "workflow_scripts/rules/studies.smk"
    include: "workflow_scripts/rules/dataset.smk"
    include: "workflow_scripts/rules/qc.smk"


rule all:
    default_target: True
    input:
        dataset_target,


onstart:
    hold_version_lock()
    note_interrupts_from_now()


onsuccess:
    let_go_of_version_lock()
    print_summary(MANIFEST)


onerror:
    let_go_of_version_lock()
    say_if_interrupted()
