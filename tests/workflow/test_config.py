"""The configuration: defaults from the schema, the schema's refusals, and check_config's."""

from __future__ import annotations

import ast
import os

import pytest
import yaml
from snakemake.exceptions import WorkflowError

from conftest import REPO
from workflow_scripts.config import (
    FOLLOW_SYMLINKS,
    SCHEMA,
    ConfigError,
    check_config,
    default_config,
    schema_default,
)
from workflow_scripts.layout import Layout


def schema_defaults() -> dict:
    """Every key's default as the schema file states it, nested sections filled, read here
    with yaml rather than through the validator."""
    schema = yaml.safe_load(SCHEMA.read_text())
    defaults = {}
    for key, spec in schema["properties"].items():
        value = spec["default"]
        if spec.get("type") == "object" and "properties" in spec and value == {}:
            value = {name: sub["default"] for name, sub in spec["properties"].items()}
        defaults[key] = value
    return defaults


def test_the_follow_symlinks_default_is_written_once_in_the_schema():
    """Issue 18: the default was restated in five modules. The code takes it from the schema
    (FOLLOW_SYMLINKS); no parameter, field or ``config.get`` fallback writes it again."""
    assert FOLLOW_SYMLINKS is schema_defaults()["follow_symlinks"] is True
    assert schema_default("contours") == ["i"]
    restated = []
    for path in sorted((REPO / "workflow_scripts").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.arguments):
                named = [*node.posonlyargs, *node.args][-len(node.defaults) or len(node.args) :]
                pairs = list(zip(named, node.defaults, strict=False))
                pairs += list(zip(node.kwonlyargs, node.kw_defaults, strict=True))
                restated += [
                    f"{path.name}:{arg.lineno}"
                    for arg, default in pairs
                    if arg.arg == "follow_symlinks" and _literal(default)
                ]
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id == "follow_symlinks"
                and _literal(node.value)
            ) or (
                isinstance(node, ast.Call)
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "follow_symlinks"
                and _literal(node.args[1])
            ):
                restated.append(f"{path.name}:{node.lineno}")
    assert restated == []


def _literal(node: ast.AST | None) -> bool:
    """A written-out value (None, "use the configured one", is not a default)."""
    return isinstance(node, ast.Constant) and node.value is not None


def test_default_config_is_the_schema_defaults():
    config = default_config()
    assert config == schema_defaults()
    assert set(config) == set(yaml.safe_load(SCHEMA.read_text())["properties"])


def test_config_yaml_states_the_schema_defaults():
    # config.yaml documents every key; building with it must be building with the defaults.
    assert yaml.safe_load((REPO / "config.yaml").read_text()) == default_config()


def test_overriding_one_key_of_a_section_keeps_the_section_defaults():
    defaults = schema_defaults()
    config = default_config(checks={"max_pixels": 5}, contours=["i", "o"], version="2.0.0")
    assert config["checks"] == {**defaults["checks"], "max_pixels": 5}
    assert config["contours"] == ["i", "o"]
    assert config["version"] == "2.0.0"
    assert config["qc"] == defaults["qc"]


def test_overrides_are_not_changed_by_filling_the_defaults():
    checks = {"max_pixels": 5}
    config = default_config(checks=checks)
    config["checks"]["max_mask_fraction"] = 0.9
    assert checks == {"max_pixels": 5}


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"version": "../x"}, ["instance['version']", "'../x' does not match"]),
        ({"version": ""}, ["instance['version']"]),
        ({"version": "_phantom"}, ["instance['version']"]),  # the phantom's folder name
        ({"out_dir": ""}, ["instance['out_dir']"]),
        ({"contours": ["o"]}, ["instance['contours']", "contains"]),
        ({"contours": ["i", "i"]}, ["instance['contours']", "non-unique"]),
        ({"contours": ["i", "x"]}, ["instance['contours'][1]"]),
        ({"checks": {"max_pixels": 0}}, ["instance['checks']['max_pixels']"]),
        ({"checks": {"max_mask_fraction": 0}}, ["instance['checks']['max_mask_fraction']"]),
        ({"checks": {"area_outlier_factor": 1}}, ["instance['checks']['area_outlier_factor']"]),
        ({"checks": {"max_i_outside_o": 1.5}}, ["instance['checks']['max_i_outside_o']"]),
        ({"splits": {"train": 1.0, "val": 0.0}}, ["'test' is a required property"]),
        ({"split_seed": -1}, ["instance['split_seed']"]),
        ({"qc": {"window": "auto"}}, ["instance['qc']['window']"]),
        ({"qc": {"percentiles": [1, 50, 99]}}, ["instance['qc']['percentiles']"]),
        ({"qc": {"sheet_columns": 0}}, ["instance['qc']['sheet_columns']"]),
        ({"phantom": {"size": 16}}, ["instance['phantom']['size']"]),
        ({"phantom": {"slices": 1}}, ["instance['phantom']['slices']"]),
        ({"no_such_key": 1}, ["'no_such_key' was unexpected"]),
    ],
)
def test_schema_refuses_a_bad_value_naming_the_key(overrides, fragments):
    with pytest.raises(WorkflowError) as raised:
        default_config(**overrides)
    for fragment in fragments:
        assert fragment in str(raised.value)


@pytest.fixture
def raw(tmp_path):
    """A data folder with a link.csv (check_config does not read it)."""
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "link.csv").write_text("patient_id,original_id\nA,B\n")
    return folder


def refusal(config) -> str:
    with pytest.raises(ConfigError) as raised:
        check_config(config)
    return str(raised.value)


def test_splits_that_do_not_add_up_to_one_are_refused(raw, tmp_path):
    splits = {"train": 0.8, "val": 0.1, "test": 0.2}
    message = refusal(default_config(data_dir=str(raw), out_dir=str(tmp_path), splits=splits))
    assert message.startswith("splits: ")
    assert "add up to 1.1, not 1" in message


def test_splits_adding_up_to_one_up_to_rounding_are_accepted(raw, tmp_path):
    splits = {"train": 0.7, "val": 0.2, "test": 0.1}  # 0.9999999999999999 in floats
    assert sum(splits.values()) != 1
    check_config(default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), splits=splits))


@pytest.mark.parametrize("percentiles", [[99.0, 1.0], [50.0, 50.0]])
def test_percentiles_out_of_order_are_refused(raw, tmp_path, percentiles):
    config = default_config(
        data_dir=str(raw), out_dir=str(tmp_path / "out"), qc={"percentiles": percentiles}
    )
    low, high = percentiles
    assert refusal(config) == f"qc.percentiles: {low} must be below {high}"


@pytest.mark.parametrize("version", ["logs", "work"])
def test_a_version_named_like_the_workflows_own_folders_is_refused(raw, tmp_path, version):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), version=version)
    assert refusal(config) == f"version: {version!r} is reserved for the workflow's own use"


def test_missing_data_dir_is_refused(tmp_path):
    config = default_config(data_dir="/nonexistent/folder", out_dir=str(tmp_path))
    assert refusal(config) == "data_dir: '/nonexistent/folder' is not a folder"


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK")
    config = default_config(data_dir=str(tmp_path / "data.zip"), out_dir=str(tmp_path / "out"))
    assert "is not a folder" in refusal(config)


def test_data_dir_without_link_table_is_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    config = default_config(data_dir=str(tmp_path / "raw"), out_dir=str(tmp_path / "out"))
    assert refusal(config) == f"data_dir: {str(tmp_path / 'raw')!r} has no link.csv"


def test_link_table_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "raw" / "link.csv").mkdir(parents=True)
    config = default_config(data_dir=str(tmp_path / "raw"), out_dir=str(tmp_path / "out"))
    assert "has no link.csv" in refusal(config)


@pytest.mark.parametrize("out", ["raw/out", "raw", "."])
def test_out_dir_and_data_dir_nested_either_way_are_refused(tmp_path, raw, out):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / out))
    message = refusal(config)
    assert message.startswith("out_dir: ")
    assert "are nested; the build must never write into the raw data" in message


def test_relative_out_dir_is_taken_from_the_working_folder(raw, monkeypatch):
    monkeypatch.chdir(raw)
    assert "nested" in refusal(default_config(data_dir=str(raw), out_dir="results"))


def test_out_dir_linked_into_data_dir_is_refused(tmp_path, raw):
    (raw / "inside").mkdir()
    os.symlink(raw / "inside", tmp_path / "out")
    assert "nested" in refusal(default_config(data_dir=str(raw), out_dir=str(tmp_path / "out")))


def test_sibling_folders_sharing_a_name_prefix_are_not_nested(tmp_path, raw):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "raw2"))
    expected = Layout(raw, tmp_path / "raw2", config["version"], phantom=False)
    assert check_config(config) == expected


def test_phantom_build_needs_no_data_folder(tmp_path):
    config = default_config(out_dir=str(tmp_path / "not-yet"))
    layout = check_config(config)
    assert layout.phantom
    assert layout.data_dir == tmp_path / "not-yet" / "work" / "_phantom"
    assert not (tmp_path / "not-yet").exists()


def test_check_config_returns_the_builds_layout(raw, tmp_path):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), version="3.1")
    assert check_config(config) == Layout(raw, tmp_path / "out", "3.1", phantom=False)
