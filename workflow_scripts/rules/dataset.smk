# Version-level tables and the manifest that marks the version finished.


rule index_dataset:
    input:
        records=expand(str(LAYOUT.study_record("{study}")), study=STUDIES),
        raw=PLAN.raw_listing_inputs,
    output:
        index=INDEX,
        validation=VALIDATION,
    log:
        f"{LOG_DIR}/index_dataset.log",
    conda:
        "../../envs/lv-dataset.yaml"
    params:
        links=PLAN.links_params,
        contours=config["contours"],
        splits=config["splits"],
        split_seed=config["split_seed"],
        version=config["version"],
    script:
        "../scripts/index_dataset.py"


rule write_manifest:
    input:
        records=expand(str(LAYOUT.study_record("{study}")), study=STUDIES),
        index=INDEX,
        validation=VALIDATION,
        qc=VERSION_QC,
    output:
        MANIFEST,
    log:
        f"{LOG_DIR}/write_manifest.log",
    conda:
        "../../envs/lv-dataset.yaml"
    params:
        config=config,
        exclusions=PLAN.exclusions_input,
    script:
        "../scripts/write_manifest.py"
