# QC: the version's dataset plots and review sheet (part of the dataset, before the manifest),
# and what only `snakemake --report` shows. Each study's own plot and report page are made by
# its build (rule build_studies); these steps read the version's tables, and summarize_qc
# gathers the studies' pages by linking them.


rule plot_qc:
    input:
        **MEASURES,
        index=INDEX,
        validation=VALIDATION,
    output:
        review=str(LAYOUT.review_sheet),
        mask_areas=report(
            str(LAYOUT.dataset_plot("mask_areas")),
            caption="../report/mask_areas.rst",
            category="Label figures",
            labels={"figure": DATASET_PLOTS["mask_areas"]},
        ),
        area_to_median=report(
            str(LAYOUT.dataset_plot("area_to_median")),
            caption="../report/area_to_median.rst",
            category="Label figures",
            labels={"figure": DATASET_PLOTS["area_to_median"]},
        ),
        intensities=report(
            str(LAYOUT.dataset_plot("intensities")),
            caption="../report/intensities.rst",
            category="Label figures",
            labels={"figure": DATASET_PLOTS["intensities"]},
        ),
    log:
        f"{LOG_DIR}/plot_qc.log",
    conda:
        "../../envs/lv-dataset.yaml"
    params:
        exclusions=PLAN.all_exclusions_params,
        area_outlier_factor=config["checks"]["area_outlier_factor"],
    script:
        "../scripts/plot_qc.py"


rule summarize_qc:
    input:
        batches=BATCH_RECORDS,
        links=str(LAYOUT.link_table),
        index=INDEX,
    output:
        studies=report(
            directory(str(LAYOUT.report_studies)),
            patterns=["{split}/{study}.html"],
            caption="../report/study.rst",
            category="Studies",
            labels={"study": "{study}", "split": "{split}"},
        ),
        flagged=report(
            directory(str(LAYOUT.report_flagged)),
            patterns=["{code}/{study}/{slice}-{codes}.png"],
            caption="../report/flagged.rst",
            category="Flagged slices",
            subcategory="{code}",
            labels={
                "study": "{study}",
                "slice": "{slice}",
                "problem codes": "{codes}",
            },
        ),
    log:
        f"{LOG_DIR}/summarize_qc.log",
    conda:
        "../../envs/lv-dataset.yaml"
    script:
        "../scripts/summarize_qc.py"
