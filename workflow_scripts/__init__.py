"""The workflow's library: what the Snakefile's rules call, one package per stage.

Stages, in the order of the Snakefile (``rules/*.smk`` hold the rules, ``scripts/`` the thin
callers that run them):

- :mod:`~workflow_scripts.raw` (rule ``generate_phantom``, and everything that reads raw input):
  link.csv, a study's folder listing, pairing its files by slice number, contour files, DICOM
  slices, the stable problem codes, and the phantom generator.
- :mod:`~workflow_scripts.study` (rule ``build_studies``): a batch of studies per job, and one
  study's build: its cine from the DICOM headers (positions, phases, ED/ES), reading its
  slices, masks, shape, label and copy checks, its volumes, and writing its samples, its cine
  stack (``frames: all``), overlays, plot, pairing table and report page.
- :mod:`~workflow_scripts.dataset` (rules ``index_dataset``, ``write_manifest``): the version's
  tables (index, validation, measures, frames), patient-level splits (hashed, or from a
  ``splits_file``), the manifest, and the guard that a finished version never changes.
- :mod:`~workflow_scripts.qc` (rules ``plot_qc``, ``summarize_qc``, and the pictures and report
  page every study's build makes): what a person looks at, and the reviewed exclusions that come
  back from it.

Plumbing beside them:

- ``config``: the config schema's defaults and the checks a schema cannot express;
- ``version_config``: a version made from another (``from_version``) and a finished version's
  run start from the recorded configuration, changed only by what the command line names;
- ``layout``: where every file of a build goes (``Layout``) and where the raw data is
  (``RawLayout``: link.csv, dicoms/, contourfiles/);
- ``build_plan``: what is worked out when the Snakefile is parsed (studies, job parameters,
  and the run's mode: build, a finished version's run, or its report);
- ``console``: a refusal's message without a traceback, and a quiet console after Ctrl-C;
- ``batches``: which studies each job builds;
- ``files``: atomic writes, reproducible Parquet bytes, folder listings;
- ``job_failures``: how a job ends when it cannot finish (a refusal, a full disk, a Ctrl-C) in
  one message, and the run's one line when interrupted;
- ``version_lock``: one build at a time per version.
"""
