# Build-wide QC for `snakemake --report`: flagged slices grouped by problem code, label figures.


rule summarize_qc:
    input:
        index=INDEX,
    output:
        flagged=report(
            directory(f"{WORK_DIR}/report/flagged"),
            patterns=["{code}-{page}.jpg"],
            caption="../report/flagged.rst",
            category="Flagged slices",
            subcategory="{code}",
        ),
        label_checks=report(
            f"{WORK_DIR}/report/label_checks.csv",
            caption="../report/label_checks.rst",
            category="Label checks",
        ),
    log:
        f"{LOG_DIR}/summarize_qc.log",
    conda:
        "../../envs/lv-dataset.yaml"
    script:
        "../scripts/summarize_qc.py"
