"""The version as a whole (rules ``index_dataset``, ``write_manifest``).

- ``tables``: ``index.parquet`` and ``validation.parquet`` from the study records, and the
  study folders link.csv does not list;
- ``splits``: patient-level train/val/test assignment;
- ``manifest``: the manifest that marks a version finished;
- ``stale_records``: refusing the manifest when a study record no longer describes its files;
- ``version_guard``: refusing to rebuild a finished version differently.
"""
