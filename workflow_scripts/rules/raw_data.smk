# The built-in phantom: only when no data_dir is configured.


rule generate_phantom:
    output:
        directory(str(LAYOUT.data_dir)),
    params:
        spec=config["phantom"],
    log:
        f"{LOG_DIR}/generate_phantom.log",
    script:
        "../scripts/generate_phantom.py"
