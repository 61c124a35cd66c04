# The built-in phantom: only when no data_dir is configured.


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
