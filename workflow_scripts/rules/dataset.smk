# Version-level tables and the manifest that marks the version finished. Both read the study
# records of every batch (the batch records list them).


rule index_dataset:
    input:
        batches=BATCH_RECORDS,
        links=str(LAYOUT.link_table),
        raw=PLAN.raw_listing_inputs,
    output:
        **MEASURES,
        **FRAMES,
        index=INDEX,
        validation=VALIDATION,
    log:
        f"{LOG_DIR}/index_dataset.log",
    conda:
        "../../envs/lv-dataset.yaml"
    params:
        contours=config["contours"],
        splits=config["splits"],
        split_seed=config["split_seed"],
        # each study's split from config splits_file (None: by hash); checked at parse time
        split_assignment=PLAN.split_assignment,
        version=config["version"],
    script:
        "../scripts/index_dataset.py"


rule write_manifest:
    input:
        **MEASURES,
        **FRAMES,
        batches=BATCH_RECORDS,
        index=INDEX,
        validation=VALIDATION,
        qc=VERSION_QC,
    output:
        MANIFEST,
    log:
        f"{LOG_DIR}/write_manifest.log",
    conda:
        "../../envs/lv-dataset.yaml"
    # No params: the configuration is read in the job. A finished version's manifest is then
    # never rewritten for a difference the immutability check lets through (a moved data_dir,
    # a new config key at its default, a touched exclusions file).
    script:
        "../scripts/write_manifest.py"
