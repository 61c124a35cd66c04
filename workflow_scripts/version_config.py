"""The configuration a build uses when a version's recorded configuration exists.

Two builds start from a configuration recorded in a manifest rather than from config.yaml:

- **a version made from another** (``--config from_version=1.0.0 version=1.1.0 ...``): the
  new version starts from 1.0.0's recorded configuration, so the review loop
  (``exclusions=...``) never drops an option such as ``contours: [i, o]``;
- **a finished version** (any run naming it, ``--report`` included): its configuration is the
  one it was built with, whatever config.yaml says now.

In both, only the keys the user names on the command line (``--config``, and ``--configfile``
other than the workflow's own config.yaml) change the recorded configuration. config.yaml and
the schema's defaults fill in only keys the record lacks: those that say how a build runs
(``studies_per_job``), and keys added to the workflow after the version was built. For a
finished version, a named key that differs from the record is then refused by the immutability
check (:mod:`~workflow_scripts.dataset.version_guard`), naming the key.

Precedence, lowest first: schema defaults, config.yaml, the recorded configuration (whole
top-level values: a recorded ``splits`` replaces config.yaml's, it is not merged with it), the
keys named on the command line (merged into the recorded sections, as Snakemake merges
``--config`` into config.yaml).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from loader.manifest import MANIFEST_NAME, finished_versions, read_manifest
from workflow_scripts.config import SCHEMA, ConfigError, command_line_values_typed

__all__ = ["FROM_VERSION", "from_recorded_config", "named_on_command_line"]

#: The config key naming the version a build is made from.
FROM_VERSION = "from_version"


def named_on_command_line(
    config_values: Mapping[str, Any],
    configfiles: Iterable[str | Path],
    workflow_configfiles: Iterable[str | Path],
) -> dict[str, Any]:
    """The configuration the user named on the command line: the ``--configfile`` files (in
    order) then the ``--config`` values (``config_values``), merged as Snakemake merges them.

    A ``--configfile`` that is one of ``workflow_configfiles`` (the config.yaml the Snakefile
    reads anyway) names nothing: it is the default configuration, passed explicitly."""
    from snakemake.common.configfile import load_configfile  # deferred: heavy import
    from snakemake.utils import update_config

    defaults = {Path(path).resolve() for path in workflow_configfiles if Path(path).is_file()}
    named: dict[str, Any] = {}
    for path in configfiles:
        if Path(path).resolve() not in defaults:
            update_config(named, load_configfile(str(path)))
    update_config(named, copy.deepcopy(dict(config_values)))
    command_line_values_typed(named)
    return named


def from_recorded_config(config: dict[str, Any], named: Mapping[str, Any]) -> str | None:
    """Put in ``config`` (in place: Snakemake's config object) the configuration of a version
    made from another, or of a finished version, as the module describes; leave it alone for
    a new version built from config.yaml.

    ``config``: Snakemake's configuration (config.yaml, then the command line); ``named``:
    :func:`named_on_command_line`. Returns a note for the console when config.yaml differs
    from a finished version's record on keys the command line does not name (None otherwise).
    Raises ConfigError for a ``from_version`` that is not a finished version in out_dir
    (listing those there) or a new version without a name of its own.
    """
    out_dir = Path(config["out_dir"])
    source = config.get(FROM_VERSION) or ""
    if source:
        recorded = _source_config(out_dir, source)
        version = named.get("version")
        if version is None or str(version) == source:
            raise ConfigError(
                f"{FROM_VERSION}: a version made from {source!r} needs a name of its own: add "
                f"version=NEW to the command line (e.g. --config {FROM_VERSION}={source} "
                "version=NEW ...)"
            )
        _replace(config, _layered(config, recorded, named))
        config.update(version=str(version), out_dir=str(out_dir), **{FROM_VERSION: source})
        return None
    manifest = out_dir / str(config["version"]) / MANIFEST_NAME
    if not manifest.is_file():
        return None
    recorded = read_manifest(manifest.parent)["config"]
    unused = sorted(
        key
        for key in _known(recorded)
        if key in config and key not in named and key not in ("out_dir", "version")
        if config[key] != recorded[key]
    )
    _replace(config, _layered(config, recorded, named))
    config["out_dir"] = str(out_dir)
    if not unused:
        return None
    differs = "differs from it and is" if len(unused) == 1 else "differ from it and are"
    return (
        f"Note: version {config['version']!r} in {out_dir} is finished: its recorded "
        f"configuration ({manifest}) is used; config.yaml's {', '.join(unused)} {differs} not. "
        "Name a key on the command line to check it against the version."
    )


def _source_config(out_dir: Path, source: str) -> dict[str, Any]:
    """The recorded configuration of ``source``, a finished version in ``out_dir``."""
    if (out_dir / source / MANIFEST_NAME).is_file():
        return read_manifest(out_dir / source)["config"]
    finished, unfinished = finished_versions(out_dir) if out_dir.is_dir() else ([], [])
    present = ", ".join(name for _, _, name, _, _ in finished) or "none"
    exists = (out_dir / source).is_dir()
    what = "is not finished (it has no manifest)" if exists else "does not exist"
    more = f"; not finished: {', '.join(unfinished)}" if unfinished else ""
    raise ConfigError(
        f"{FROM_VERSION}: version {source!r} in {out_dir} {what}; a version is made only from "
        f"a finished one. Finished versions in {out_dir}: {present}{more}."
    )


def _layered(
    config: Mapping[str, Any], recorded: Mapping[str, Any], named: Mapping[str, Any]
) -> dict[str, Any]:
    """config (config.yaml and defaults), then the recorded keys whole, then the named ones
    merged in."""
    from snakemake.utils import update_config

    layered = copy.deepcopy(dict(config))
    for key in _known(recorded):
        if key not in ("version", FROM_VERSION):
            layered[key] = copy.deepcopy(recorded[key])
    update_config(layered, copy.deepcopy(dict(named)))
    return layered


def _known(recorded: Mapping[str, Any]) -> list[str]:
    """The recorded keys the schema still knows (a key removed from the workflow since the
    version was built is not carried into a build)."""
    known = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))["properties"]
    return [key for key in recorded if key in known]


def _replace(config: dict[str, Any], new: Mapping[str, Any]) -> None:
    config.clear()
    config.update(new)
