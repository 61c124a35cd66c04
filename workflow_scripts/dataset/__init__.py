"""The version as a whole (rules ``index_dataset``, ``write_manifest``).

- ``batch_tables``: a batch's share of the version's tables, written by its job (rule
  ``build_studies``) and combined by the steps below;
- ``schemas``: the columns of ``index.parquet`` and ``validation.parquet``;
- ``tables``: ``index.parquet``, ``validation.parquet``, ``measures.parquet`` and
  ``frames.parquet`` from the batches' tables, and the study folders link.csv does not list;
- ``splits``: patient-level train/val/test assignment;
- ``manifest``: the manifest that marks a version finished;
- ``stale_records``: refusing the manifest when a study record no longer describes its files;
- ``version_guard``: refusing to rebuild a finished version differently;
- ``raw_state``: what that check compares, the raw files now (stat'ed and listed in worker
  processes at scale).
"""
