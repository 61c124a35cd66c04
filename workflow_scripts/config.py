"""The build's configuration: its schema, its defaults, and the checks a schema cannot express.

``schemas/config.schema.yaml`` is the one source of every key's meaning and default; the rule
files validate ``config`` against it (``validate(config, schema=...)`` in ``common.smk``), which
fills the defaults in. :func:`check_config` then checks what a JSON schema cannot and returns the
build's :class:`~workflow_scripts.layout.Layout`. Either failing stops the run before any job.

Two things make that validation friendlier than the schema alone:
:func:`command_line_values_typed` gives nested ``--config`` values the types the schema asks
for (Snakemake's parser leaves ``checks={max_pixels: 5}`` a string), and
:func:`config_problems` says what is wrong in one short paragraph: for each wrong key, the
key, the value, why it is wrong, and the nearest valid key for a typo, with the full detail
written to a file.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
from pathlib import Path
from typing import Any

import yaml

from workflow_scripts.layout import RESERVED_NAMES, Layout
from workflow_scripts.study.resample import ResampleGrid

__all__ = [
    "FOLLOW_SYMLINKS",
    "SCHEMA",
    "ConfigError",
    "check_config",
    "command_line_values_typed",
    "config_problems",
    "default_config",
    "schema_default",
]

SCHEMA = Path(__file__).parent / "schemas" / "config.schema.yaml"
_SHOWN_ERRORS = 3


def schema_default(key: str) -> Any:
    """The schema's default of the top-level ``key``: the one place a default is written, for
    code that may run with a partial configuration (a test, a helper called directly)."""
    return copy.deepcopy(_schema()["properties"][key]["default"])


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
    command_line_values_typed(config)  # as common.smk does before validating
    validate(config, str(SCHEMA))
    return config


def check_config(config: dict) -> Layout:
    """Check what the schema cannot and return the build's Layout.

    Puts ``resample`` in its canonical form (numbers). Raises ConfigError naming the key: split
    fractions that do not add up to 1, percentiles out of order, a resample grid beyond its
    limits, a reserved version name, an exclusions or splits file that does not exist, a
    data_dir that is missing or lacks link.csv, or an out_dir inside data_dir (the build must
    never write into the raw data) or the reverse.
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
    for key in ("exclusions", "splits_file"):
        path = config.get(key, "")
        if path and not Path(path).is_file():
            raise ConfigError(f"{key}: {path!r} is not a file")
    if layout.phantom:
        return layout
    data_dir = layout.data_dir
    if not data_dir.is_dir():
        raise ConfigError(f"data_dir: {str(data_dir)!r} is not a folder")
    if not layout.raw.link_csv.is_file():
        raise ConfigError(f"data_dir: {str(data_dir)!r} has no link.csv")
    data, out = data_dir.resolve(), layout.out_dir.resolve()
    if out.is_relative_to(data) or data.is_relative_to(out):
        raise ConfigError(
            f"out_dir: {str(layout.out_dir)!r} and data_dir {str(data_dir)!r} are nested; "
            "the build must never write into the raw data"
        )
    return layout


@functools.cache
def _cached_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def _schema() -> dict[str, Any]:
    return copy.deepcopy(_cached_schema())


#: Whether symbolic links inside data_dir are followed wherever they lead, unless configured.
FOLLOW_SYMLINKS: bool = schema_default("follow_symlinks")


def command_line_values_typed(config: dict[str, Any]) -> None:
    """Convert, in place, strings where the schema expects a number, an integer or a boolean.

    Snakemake reads the top-level values of ``--config`` with YAML types, but the values inside
    a mapping or list (``checks={max_pixels: 5}``, ``qc={percentiles: [1, 99]}``) stay strings.
    A string that does not read as the expected type is left alone for the schema to refuse.
    """
    _typed(config, _schema())


def _typed(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        # An object, or an object among alternatives (``resample``: null or a grid).
        branches = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
        properties = next((b["properties"] for b in branches if "properties" in b), {})
        for key, item in value.items():
            if key in properties:
                value[key] = _typed(item, properties[key])
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_typed(item, schema["items"]) for item in value]
    if not isinstance(value, str):
        return value
    kind = schema.get("type")
    with contextlib.suppress(ValueError):
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def config_problems(config: dict[str, Any], detail_file: str | Path) -> str | None:
    """One short paragraph saying what is wrong with ``config``, or None when the schema takes it.

    It names each wrong key with its value and what is expected (for an unknown key, the
    nearest valid key and the list of valid ones); the validator's full report goes to
    ``detail_file``. The schema validation proper (``validate`` in ``common.smk``) follows it.
    """
    problems = explain_config_errors(config)
    if not problems:
        return None
    detail_file = Path(detail_file)
    with contextlib.suppress(OSError):
        detail_file.parent.mkdir(parents=True, exist_ok=True)
        detail_file.write_text("\n\n".join(_full_reports(config)) + "\n", encoding="utf-8")
    more = f" (and {len(problems) - _SHOWN_ERRORS} more)" if len(problems) > _SHOWN_ERRORS else ""
    return (
        f"Invalid configuration{more}:\n  - "
        + "\n  - ".join(problems[:_SHOWN_ERRORS])
        + f"\nconfig.yaml describes every key; the validator's full report is in {detail_file}."
    )


def _full_reports(config: dict[str, Any]) -> list[str]:
    import jsonschema

    return [str(error) for error in jsonschema.Draft202012Validator(_schema()).iter_errors(config)]


def explain_config_errors(config: dict[str, Any]) -> list[str]:
    """One line per schema violation of ``config``, most useful first (empty when valid)."""
    import jsonschema

    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.path)):
        lines.append(_explain(error, schema))
    return lines


def _explain(error: Any, schema: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.path)
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        prefix = f"{where}." if where else ""
        parts = []
        for key in unknown:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            parts.append(f"'{prefix}{key}' is not a setting of this workflow{hint}")
        return (
            "; ".join(parts) + f"; valid keys{' of ' + where if where else ''}: {', '.join(known)}"
        )
    description = error.schema.get("description")
    about = f" ({description.rstrip('.')})" if description else ""
    return f"{where or 'config'} = {error.instance!r}: {_reason(error)}{about}"


def _reason(error: Any) -> str:
    limit = error.validator_value
    if error.validator == "type":
        return f"must be of type {limit}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, limit))}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<="}
        return f"must be {relation.get(error.validator, '<')} {limit}"
    if error.validator == "pattern":
        return "must be a plain name: letters, digits, '.', '_' or '-', not starting with '.'"
    if error.validator in ("minItems", "maxItems"):
        return f"needs {'at least' if error.validator == 'minItems' else 'at most'} {limit} item(s)"
    if error.validator == "contains" and "const" in limit:
        return f"must include {limit['const']!r}"
    if error.validator == "uniqueItems":
        return "lists an item twice"
    if error.validator == "minLength":
        return "must not be empty"
    return error.message
