"""The manifest of a built dataset version, and checking a version folder against it.

``{out_dir}/{version}/manifest.json`` is written last, only when the whole build succeeded, so a
version folder without one is not a finished dataset. It records (all paths POSIX, relative):

- ``format`` (int), ``version`` (str), ``built_at`` (UTC ISO 8601; the only field that differs
  between two builds of the same inputs and configuration);
- ``config``: the configuration the dataset was built with;
- ``code``: ``package_version``, ``git_commit`` and ``git_dirty`` (None when not a git checkout);
- ``software``: versions of Python and the libraries that shape the bytes;
- ``inputs``: ``{path relative to data_dir: {"sha256", "size", "mtime_ns"}}`` for link.csv and
  every DICOM and contour file the build read (also those it left out: repairing one changes
  the dataset); an input reached through a symbolic link also has ``link_target``, the file
  that was read (relative to data_dir when inside it, else absolute);
- ``outputs``: ``{path relative to the version folder: {"sha256", "size"}}`` for every file the
  build wrote into the version folder (the manifest itself excepted);
- ``counts``: studies, samples, and problems by code.

- ``listing``: the folder listings the immutability check compares: ``top`` (study folder
  names under dicoms/ and contourfiles/), ``studies`` (study id -> listing digest) and
  ``unlisted_contours`` (contour folder not in link.csv -> its contour files).

Two formats, told apart by ``format``:

- **2** (written since issue 22): manifest.json holds everything but ``inputs``, ``outputs`` and
  ``listing``, which live in three Parquet tables beside it (:data:`MANIFEST_TABLES`), written
  before it; manifest.json's ``tables`` records each table's file name, ``sha256``, ``size``
  and ``rows``, so manifest.json still pins every byte and stays the version's one commit
  point. A reader checks a table's sha256 before using it (:func:`manifest_table`); one
  that differs is refused naming the file. Columns: inputs ``path, sha256, size, mtime_ns,
  link_target, config_path`` (the last two null where absent; ``config_path`` is an entry's
  ``path``, the configured location of exclusions.csv and splits.csv); outputs ``path, sha256,
  size``; listing ``section, key, value`` (one row per name of ``top`` and per file of
  ``unlisted_contours``, a null value for an empty list; one row per study of ``studies``;
  a row with a null key for a section that is empty).
  Rows are sorted by path (inputs, outputs) and by section and key (listing), sha256 as hex.
  manifest.json also repeats, under ``top_outputs``, the outputs directly in the version
  folder (``index.parquet``, ``validation.parquet``, ``measures.parquet``): ``{name:
  {"sha256", "size"}}``, so that the loader's fast open checks them, and the index byte for
  byte, without reading a table (written since the 100,000-study work of issue 22; a
  format-2 manifest without it is read as before, its top outputs taken from the outputs
  table: :func:`top_outputs`).
- **1** (before): all of it in manifest.json (~6.5 kB of JSON per study).

:func:`read_manifest` returns the same mapping for both: in format 2 ``inputs``, ``outputs``
and ``listing`` are read from their tables when first used (a :class:`ManifestSection`), so
code that reads a few studies' entries works unchanged; code that compares all of them reads
only the columns it needs with :func:`manifest_table` and compares them vectorized.

Both the workflow (which writes it) and the loader (which checks it) use this module; it also
holds the one ``{"sha256", "size"}`` digest that every manifest entry and study record uses.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow is imported where a table is read: importing the loader does not
    import pyarrow as pa

__all__ = [
    "MANIFEST_NAME",
    "DatasetNotFinishedError",
    "DatasetVerificationError",
    "bytes_digest",
    "check_dataset",
    "file_digest",
    "finished_versions",
    "manifest_bytes",
    "manifest_files",
    "manifest_problems",
    "manifest_section_table",
    "manifest_table",
    "read_manifest",
    "read_whole_manifest",
    "top_outputs",
    "verify_dataset",
]

MANIFEST_NAME = "manifest.json"
#: The format written (see the module docstring); :data:`READABLE_FORMATS` are read.
MANIFEST_FORMAT = 2
#: Format 1: the whole manifest in manifest.json (versions finished before issue 22).
INLINE_FORMAT = 1
READABLE_FORMATS = (INLINE_FORMAT, MANIFEST_FORMAT)
#: Format 2: the sections kept in Parquet tables beside manifest.json, by section.
MANIFEST_TABLES = {
    "inputs": "manifest.inputs.parquet",
    "outputs": "manifest.outputs.parquet",
    "listing": "manifest.listing.parquet",
}
#: manifest.json's copy of the outputs directly in the version folder (format 2; derived from
#: ``outputs`` when written, so never taken from the manifest given to :func:`manifest_files`).
TOP_OUTPUTS = "top_outputs"
#: The columns of each table, in order; (column, entry key) for the optional ones of inputs.
_INPUT_OPTIONAL = (("link_target", "link_target"), ("config_path", "path"))
_LISTING_LISTS = ("top", "unlisted_contours")  # sections of name lists; ``studies``: a mapping
#: What a version folder holds besides its manifest: any of them without a manifest is a build
#: that did not finish.
DATASET_PARTS = ("index.parquet", "slices", "pairs", "qc", "validation.parquet")
#: What marks a folder of raw data in the Sunnybrook layout (the workflow's data_dir).
RAW_DATA_PARTS = ("link.csv", "dicoms", "contourfiles")


class DatasetNotFinishedError(FileNotFoundError):
    """The folder has no manifest: the build did not finish (or this is not a dataset)."""


class DatasetVerificationError(ValueError):
    """Files of a finished dataset are missing or differ from what the manifest recorded."""

    def __init__(self, version_dir: Path, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(
            f"dataset {version_dir} does not match its manifest "
            f"({len(problems)} problem(s)):\n  {shown}{more}"
        )


def bytes_digest(data: bytes) -> dict[str, Any]:
    """The manifest's digest of some content: ``{"sha256": hex digest, "size": bytes}``."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def file_digest(path: str | Path) -> dict[str, Any]:
    """:func:`bytes_digest` of a file's content, read in chunks (never the whole file at once)."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        size = handle.tell()
    return {"sha256": digest.hexdigest(), "size": size}


def read_manifest(version_dir: str | Path) -> dict[str, Any]:
    """Load ``manifest.json`` of a version folder.

    Raises DatasetNotFinishedError when it is absent, with a message saying what that means.
    """
    path = Path(version_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetNotFinishedError(not_a_version_message(Path(version_dir))) from None
    return _parsed(path, text)


def read_whole_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a version folder (or of ``path`` naming its manifest.json) as plain
    data in format 1's shape, whatever its format: every section inline as dicts, ``format``
    1 and no ``tables``; ``json.dumps`` of it is a format-1 manifest of the same version. For
    tools and tests that compare or edit whole manifests (it builds ~1 µs of Python objects
    per entry: at 100,000 studies, prefer :func:`manifest_table`)."""
    path = Path(path)
    manifest = read_manifest(path.parent if path.name == MANIFEST_NAME else path)
    whole = {key: value for key, value in manifest.items() if key not in ("tables", TOP_OUTPUTS)}
    for section in MANIFEST_TABLES:
        if section in manifest:
            whole[section] = json.loads(json.dumps(dict(manifest[section])))
    whole["format"] = INLINE_FORMAT
    return whole


def _parsed(path: Path, text: str) -> dict[str, Any]:
    """The manifest in ``text`` (read from ``path``); ValueError for another format. In
    format 2, ``inputs``, ``outputs`` and ``listing`` are :class:`ManifestSection` views of
    their tables (read, and their digests checked, when first used)."""
    manifest = json.loads(text)
    if manifest.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"{path}: manifest format {manifest.get('format')!r} is not supported "
            f"(expected one of {READABLE_FORMATS})"
        )
    if manifest["format"] == MANIFEST_FORMAT:
        for section in MANIFEST_TABLES:
            manifest[section] = ManifestSection(path.parent, manifest, section)
    return manifest


class ManifestSection(Mapping):
    """``inputs``, ``outputs`` or ``listing`` of a format-2 manifest, as format 1 had it (a
    mapping of path to entry; ``listing`` as ``{"top": ..., "studies": ..., "unlisted_contours":
    ...}``), read from its table on first use. Building the entries costs ~1 µs each: code that
    compares every file uses :func:`manifest_table` instead."""

    def __init__(self, version_dir: Path, manifest: Mapping[str, Any], section: str):
        self._version_dir, self._manifest, self._section = version_dir, manifest, section
        self._entries: dict[str, Any] | None = None
        self._table: pa.Table | None = None

    def table(self) -> pa.Table:
        """The section's whole table, read and its sha256 checked once (see
        :func:`manifest_table`)."""
        if self._table is None:
            self._table = _read_table(self._version_dir, self._manifest, self._section)
        return self._table

    def _loaded(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = _section_entries(self._section, self.table())
        return self._entries

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"ManifestSection({self._section!r} of {self._version_dir})"


def manifest_table(
    version_dir: str | Path,
    manifest: Mapping[str, Any],
    section: str,
    columns: list[str] | None = None,
) -> pa.Table:
    """The ``inputs``, ``outputs`` or ``listing`` of a manifest (as :func:`read_manifest`
    returns it) as a pyarrow Table of the table's ``columns`` (all by default; see the module
    docstring), in either format.

    In format 2 the table file's sha256 and size are checked against manifest.json first;
    raises DatasetVerificationError naming the file when it is missing or differs. In format
    1 the table is made from manifest.json's own entries (an old version, read as before).
    """
    entries = manifest.get(section, {})
    if isinstance(entries, ManifestSection):
        table = entries.table()
    elif manifest.get("format") == MANIFEST_FORMAT:  # a manifest not from read_manifest
        table = _read_table(Path(version_dir), manifest, section)
    else:
        table = _section_table(section, entries)
    return table if columns is None else table.select(columns)


def _read_table(version_dir: Path, manifest: Mapping[str, Any], section: str) -> pa.Table:
    """A format-2 table, its file's sha256 and size checked against manifest.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    recorded = manifest["tables"][section]
    name = recorded["file"]
    try:
        data = (version_dir / name).read_bytes()
    except FileNotFoundError:
        raise DatasetVerificationError(
            version_dir, [f"{name}: missing (a table of the manifest)"]
        ) from None
    if len(data) != recorded["size"] or hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        raise DatasetVerificationError(
            version_dir,
            [f"{name}: content changed (sha256 differs from the one {MANIFEST_NAME} records)"],
        )
    # ParquetFile, not read_table: read_table scans through pyarrow.dataset, whose background
    # threads can outlive the interpreter's teardown and abort the process at exit
    # ("terminate called without an active exception", apache/arrow#34314).
    return pq.ParquetFile(pa.BufferReader(data)).read()


def _section_table(section: str, entries: Mapping[str, Any]) -> pa.Table:
    """The table of a manifest section (format 1's mapping, or format 2's before writing)."""
    import pyarrow as pa

    if section == "listing":
        rows = []
        for part in ("top", "studies", "unlisted_contours"):
            if part not in entries:
                continue
            if not entries[part]:  # present but empty: a row without key says so
                rows.append((part, None, None))
            for key, value in sorted(entries[part].items()):
                if part == "studies":
                    rows.append((part, key, value))
                else:
                    rows += [(part, key, name) for name in value] or [(part, key, None)]
        names = ("section", "key", "value")
        return pa.table(
            {name: pa.array([row[i] for row in rows], pa.string()) for i, name in enumerate(names)}
        )
    paths = sorted(entries)
    columns = {
        "path": pa.array(paths, pa.string()),
        "sha256": pa.array([entries[p]["sha256"] for p in paths], pa.string()),
        "size": pa.array([entries[p]["size"] for p in paths], pa.int64()),
    }
    if section == "inputs":
        columns["mtime_ns"] = pa.array([entries[p].get("mtime_ns") for p in paths], pa.int64())
        for column, key in _INPUT_OPTIONAL:
            columns[column] = pa.array([entries[p].get(key) for p in paths], pa.string())
    return pa.table(columns)


def manifest_section_table(
    section: str,
    table: pa.Table,
    more: Mapping[str, Any] | None = None,
    leave_out: tuple[str, ...] = (),
) -> pa.Table:
    """The manifest's ``inputs`` or ``outputs`` table (``section``) of the files in ``table``
    (a ``path`` column and any of the section's other columns) and in ``more`` (path -> entry,
    as format 1 records it), without the paths in ``leave_out``, sorted by path: the table
    format 1's mapping of all of them gives (:func:`_section_table`), built by columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    extra = _section_table(section, more or {})
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(table.num_rows, field.type)
        for field in extra.schema
    ]
    combined = pa.concat_tables([pa.table(columns, schema=extra.schema), extra])
    if leave_out:
        combined = combined.filter(pc.invert(pc.is_in(combined["path"], pa.array(leave_out))))
    if pc.count_distinct(combined["path"]).as_py() != combined.num_rows:
        # a path given twice: the mapping's rule (the last entry stands), row by row
        return _section_table(section, _section_entries(section, combined))
    order = pc.sort_indices(combined, [("path", "ascending")])
    return combined.take(order).combine_chunks()


def _section_entries(section: str, table: pa.Table) -> dict[str, Any]:
    """A section's table back as format 1's mapping."""
    columns = table.to_pydict()
    if section == "listing":
        listing: dict[str, dict[str, Any]] = {}
        for part, key, value in zip(
            columns["section"], columns["key"], columns["value"], strict=True
        ):
            if key is None:  # an empty section
                listing.setdefault(part, {})
            elif part == "studies":
                listing.setdefault(part, {})[key] = value
            else:
                names = listing.setdefault(part, {}).setdefault(key, [])
                if value is not None:
                    names.append(value)
        for part in ("top", "studies"):
            listing.setdefault(part, {})
        return listing
    keys = [name for name in columns if name != "path"]
    renamed = dict(_INPUT_OPTIONAL)
    entries = {}
    for row, path in enumerate(columns["path"]):
        entry = {}
        for key in keys:
            value = columns[key][row]
            if value is not None:
                entry[renamed.get(key, key)] = value
        entries[path] = entry
    return entries


def not_a_version_message(folder: Path) -> str:
    """Why ``folder`` (which has no manifest) is not a finished dataset version, by what it is,
    and what to pass instead."""
    start = f"{folder} has no {MANIFEST_NAME}: it is not a finished dataset"
    if folder.is_dir():
        finished, unfinished = finished_versions(folder)
        if finished:
            names = ", ".join(name for _, _, name, _, _ in finished)
            return (
                f"{start} but a folder of dataset versions, holding {len(finished)} finished "
                f"version(s): {names}. Pass one of them, e.g. {folder / finished[-1][2]}"
            )
        if any((folder / name).exists() for name in RAW_DATA_PARTS):
            return (
                f"{start} but raw data in the Sunnybrook layout (link.csv, dicoms/, "
                "contourfiles/). Build a version from it (snakemake --cores N --config "
                f"data_dir={folder} version=X) and pass that version's folder, e.g. results/X"
            )
        if any((folder / name).exists() for name in DATASET_PARTS):
            return (
                f"{start}: the build of this version did not complete. Run the workflow (the "
                "same command) to finish it."
            )
        if unfinished:
            return (
                f"{start} but a folder of dataset versions, none of them finished: "
                + ", ".join(unfinished)
                + ". Run the workflow to finish one."
            )
    return (
        f"{start}, and not a dataset version folder ({{out_dir}}/{{version}}, e.g. "
        "results/1.0.0; python -m loader versions OUT_DIR lists the finished versions)."
    )


def finished_versions(out_dir: Path) -> tuple[list[tuple], list[str]]:
    """The finished versions in ``out_dir`` (a folder of versions) as (built_at, version,
    folder name, samples, studies), oldest first, and one line per unfinished or unreadable
    version folder."""
    finished, unfinished = [], []
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        try:
            path = folder / MANIFEST_NAME
            manifest = _parsed(path, path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if any((folder / name).exists() for name in DATASET_PARTS):  # a partial build
                unfinished.append(f"{folder.name} (no {MANIFEST_NAME}: not finished)")
            continue  # other folders (logs, work files) are not dataset versions
        except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
            unfinished.append(f"{folder.name} (unreadable {MANIFEST_NAME}: {exc})")
            continue
        counts = manifest.get("counts", {})
        finished.append(
            (
                str(manifest.get("built_at", "")),
                str(manifest.get("version", folder.name)),
                folder.name,
                counts.get("samples", "?"),
                counts.get("studies", "?"),
            )
        )
    return sorted(finished), unfinished


def verify_dataset(
    version_dir: str | Path, full: bool = False, *, only: list[str] | None = None
) -> list[str]:
    """Compare the files of a finished version folder with its manifest.

    By default every output file must exist with its recorded size (one ``stat`` per file);
    ``full`` also recomputes every sha256 (reads the whole dataset). ``only``: check just
    these output paths (each must be listed) instead of all. In format 2 the manifest's tables
    are checked first, by sha256 (a changed table is the only problem reported: what it lists
    cannot be trusted). Returns one human-readable line per problem (empty when all is well).
    Raises DatasetNotFinishedError when there is no manifest.
    """
    return manifest_problems(Path(version_dir), read_manifest(version_dir), full, only)


def manifest_problems(
    version_dir: Path, manifest: Mapping[str, Any], full: bool, only: list[str] | None = None
) -> list[str]:
    """:func:`verify_dataset` given the manifest already read."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = ["path", "size", "sha256"] if full else ["path", "size"]
    try:
        table = manifest_table(version_dir, manifest, "outputs", columns)
    except DatasetVerificationError as error:
        return error.problems
    if only is not None:
        wanted = pa.array(only, pa.string())
        listed = pc.is_in(wanted, value_set=table["path"]).to_numpy(zero_copy_only=False)
        problems = [
            f"{relpath}: not listed in the manifest"
            for relpath in np.asarray(only, dtype=object)[~listed]
        ]
        table = table.filter(pc.is_in(table["path"], value_set=wanted))
    else:
        problems = []
    paths = table["path"].to_pylist()
    expected = table["size"].to_numpy()
    sizes = np.array(_sizes(version_dir, paths), dtype=np.int64)
    for row in np.flatnonzero(sizes != expected).tolist():
        if sizes[row] < 0:
            problems.append(f"{paths[row]}: missing")
        else:
            problems.append(f"{paths[row]}: size {sizes[row]} bytes, manifest says {expected[row]}")
    if full:
        sha256 = table["sha256"].to_pylist()
        for row in np.flatnonzero(sizes == expected).tolist():
            if file_digest(version_dir / paths[row])["sha256"] != sha256[row]:
                problems.append(f"{paths[row]}: content changed (sha256 differs from the manifest)")
    return sorted(problems)


def _sizes(version_dir: Path, relpaths: list[str]) -> list[int]:
    """The size in bytes of each file, -1 where it is missing (one ``stat`` each)."""
    root = str(version_dir)
    sizes = []
    for relpath in relpaths:
        try:
            sizes.append(os.stat(f"{root}/{relpath}").st_size)
        except FileNotFoundError:
            sizes.append(-1)
    return sizes


def check_dataset(
    version_dir: str | Path, full: bool = False, *, only: list[str] | None = None
) -> dict[str, Any]:
    """Return the manifest of a finished, intact version folder, or raise.

    ``full`` and ``only``: see :func:`verify_dataset`. Raises DatasetNotFinishedError (no
    manifest) or DatasetVerificationError (files missing or changed), naming the files.
    """
    manifest = read_manifest(version_dir)
    problems = manifest_problems(Path(version_dir), manifest, full, only)
    if problems:
        raise DatasetVerificationError(Path(version_dir), problems)
    return manifest


def top_outputs(version_dir: str | Path, manifest: Mapping[str, Any]) -> dict[str, dict]:
    """The outputs directly in the version folder (``index.parquet``, ``validation.parquet``,
    ...) as ``{name: {"sha256", "size"}}``: manifest.json's own record of them (format 2,
    since it has one; nothing else is read), else the rows of the outputs table without a
    ``/`` (read, and its sha256 checked, by :func:`manifest_table`: raises
    DatasetVerificationError naming it when it differs), or format 1's entries."""
    if TOP_OUTPUTS in manifest:
        return {
            str(path): {"sha256": str(entry["sha256"]), "size": int(entry["size"])}
            for path, entry in manifest[TOP_OUTPUTS].items()
        }
    entries = manifest.get("outputs", {})
    if not isinstance(entries, ManifestSection):  # format 1: inline already
        return {
            path: {"sha256": entry["sha256"], "size": entry["size"]}
            for path, entry in entries.items()
            if "/" not in path
        }
    return _top_entries(manifest_table(version_dir, manifest, "outputs"))


def _top_entries(outputs: pa.Table) -> dict[str, dict]:
    """The rows of an outputs table directly in the version folder (no ``/`` in the path), as
    ``{path: {"sha256", "size"}}`` in the table's order."""
    import pyarrow.compute as pc

    top = outputs.filter(pc.invert(pc.match_substring(outputs["path"], "/")))
    return {
        row["path"]: {"sha256": row["sha256"], "size": row["size"]}
        for row in top.select(["path", "sha256", "size"]).to_pylist()
    }


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes of a format-1 ``manifest.json`` for ``manifest`` (everything inline; format
    number added, keys sorted): how versions were finished before format 2 (tests make old
    versions with it)."""
    text = json.dumps({**manifest, "format": INLINE_FORMAT}, indent=1, sort_keys=True) + "\n"
    return text.encode("utf-8")


def manifest_files(manifest: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The files of a format-2 manifest for ``manifest`` (format 1's shape: ``inputs``,
    ``outputs`` and ``listing`` as mappings, or as their tables), as (name in the version
    folder, bytes), in the order to write them: the three tables, then ``manifest.json``,
    which names their digests and so must come last (the version's commit point), and repeats
    the digests of the outputs directly in the version folder (``top_outputs``, derived here
    from ``outputs``). The same manifest gives the same bytes (with the same pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files, tables, written = [], {}, {}
    for section, name in MANIFEST_TABLES.items():
        table = manifest.get(section, {})
        if not isinstance(table, pa.Table):
            table = _section_table(section, table)
        written[section] = table
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue()
        tables[section] = {"file": name, **bytes_digest(data), "rows": table.num_rows}
        files.append((name, data))
    inline = {
        key: value
        for key, value in manifest.items()
        if key not in MANIFEST_TABLES and key != TOP_OUTPUTS
    }
    top = _top_entries(written["outputs"])  # sorted by path
    record = {**inline, "format": MANIFEST_FORMAT, "tables": tables, TOP_OUTPUTS: top}
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    files.append((MANIFEST_NAME, text.encode("utf-8")))
    return files
