# Batches of studies: one job builds several studies (the unit of work; see
# workflow_scripts/batches.py and docs/design-notes.md) and writes each study's pairing
# table, per-slice npz files, QC overlays, contact sheet and plot, report page and record
# exactly where a job per study would. Only the small batch record (written last) is a tracked
# output: Snakemake's cost grows with jobs and tracked files, not with studies. The report
# shows the studies' pages through summarize_qc.


rule build_studies:
    input:
        raw_data_input,
    output:
        record=str(LAYOUT.batch_record("{batch}")),
    log:
        str(LAYOUT.batch_log("{batch}")),
    conda:
        "../../envs/lv-dataset.yaml"
    threads: 2
    resources:
        mem_mb=batch_mem_mb,
        runtime=batch_runtime,
    params:
        studies=batch_studies,
        fingerprint=batch_fingerprint,
        options=PLAN.options_params,
        exclusions=batch_exclusions,
    script:
        "../scripts/build_studies.py"
