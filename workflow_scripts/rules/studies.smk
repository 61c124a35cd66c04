# One job per study writes all of its slices: per-slice jobs would cost a process start each,
# far more than a slice's work.


rule build_study:
    input:
        raw_data_input,
    output:
        pairs=str(LAYOUT.pairs_file("{study}")),
        slices=directory(str(LAYOUT.slices_dir("{study}"))),
        # The report shows each study through summarize_qc's per-study entries.
        qc=directory(str(LAYOUT.qc_dir("{study}"))),
        record=str(LAYOUT.study_record("{study}")),
    log:
        f"{LOG_DIR}/build_study/{{study}}.log",
    group:
        "studies"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        link=study_link,
        fingerprint=study_fingerprint,
        options=PLAN.options_params,
        exclusions=study_exclusions,
    run:
        run_build_study(params, log)
