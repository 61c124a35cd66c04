"""The build's configuration: its schema, its defaults, and the checks a schema cannot express.

``schemas/config.schema.yaml`` is the one source of every key's meaning and default; the rule
files validate ``config`` against it (``validate(config, schema=...)`` in ``common.smk``), which
fills the defaults in. :func:`check_config` then checks what a JSON schema cannot and returns the
build's :class:`~workflow_scripts.layout.Layout`. Either failing stops the run before any job.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from workflow_scripts.layout import RESERVED_NAMES, Layout
from workflow_scripts.study.resample import ResampleGrid

__all__ = ["SCHEMA", "ConfigError", "check_config", "default_config"]

SCHEMA = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value that makes the build meaningless."""


def default_config(**overrides: Any) -> dict[str, Any]:
    """The configuration the schema gives for ``overrides`` (top-level keys), defaults filled.

    What the workflow sees when config.yaml is empty; for tests, benchmarks and scripts that
    call the workflow's functions directly. Raises snakemake's WorkflowError for a bad value.
    """
    from snakemake.utils import validate  # deferred: snakemake is a heavy import

    config = {"data_dir": "", "out_dir": "results", "version": "1.0.0"}
    config.update(copy.deepcopy(overrides))
    validate(config, str(SCHEMA))
    return config


def check_config(config: dict) -> Layout:
    """Check what the schema cannot and return the build's Layout.

    Puts ``resample`` in its canonical form (numbers). Raises ConfigError naming the key: split
    fractions that do not add up to 1, percentiles out of order, a resample grid beyond its
    limits, a reserved version name, a data_dir that is missing or lacks link.csv, or an
    out_dir inside data_dir (the build must never write into the raw data) or the reverse.
    """
    splits = config["splits"]
    total = sum(splits.values())
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(f"splits: the fractions {splits} add up to {total:g}, not 1")
    low, high = config["qc"]["percentiles"]
    if not low < high:
        raise ConfigError(f"qc.percentiles: {low} must be below {high}")
    try:
        grid = ResampleGrid.from_config(config.get("resample"))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    # One spelling of the grid (numbers, not the text --config gives): the same grid must give
    # the same job parameters and manifest however it was typed.
    config["resample"] = None if grid is None else grid.as_config()
    if config["version"] in RESERVED_NAMES:
        raise ConfigError(f"version: {config['version']!r} is reserved for the workflow's own use")
    layout = Layout.from_config(config)
    if layout.phantom:
        return layout
    data_dir = layout.data_dir
    if not data_dir.is_dir():
        raise ConfigError(f"data_dir: {str(data_dir)!r} is not a folder")
    if not (data_dir / "link.csv").is_file():
        raise ConfigError(f"data_dir: {str(data_dir)!r} has no link.csv")
    data, out = data_dir.resolve(), layout.out_dir.resolve()
    if out.is_relative_to(data) or data.is_relative_to(out):
        raise ConfigError(
            f"out_dir: {str(layout.out_dir)!r} and data_dir {str(data_dir)!r} are nested; "
            "the build must never write into the raw data"
        )
    return layout
