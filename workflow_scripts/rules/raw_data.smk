# Raw input: the built-in phantom (only when no data_dir is configured), and link.csv.


rule generate_phantom:
    output:
        directory(str(LAYOUT.data_dir)),
    log:
        f"{LOG_DIR}/generate_phantom.log",
    conda:
        "../../envs/lv-dataset.yaml"
    params:
        spec=config["phantom"],
    script:
        "../scripts/generate_phantom.py"


# link.csv is checked when the workflow is parsed, before any job (rules/common.smk); this job
# records the checked table, sorted by study id, for the dataset tables. The batches do not
# depend on it: reordering link.csv's lines reruns no study.
rule validate_link_table:
    input:
        link_table_input,
    output:
        str(LAYOUT.link_table),
    log:
        f"{LOG_DIR}/validate_link_table.log",
    conda:
        "../../envs/lv-dataset.yaml"
    script:
        "../scripts/validate_link_table.py"
