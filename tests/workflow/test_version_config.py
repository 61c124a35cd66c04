"""Which configuration a version made from another (``from_version``), or a finished version's
run, uses: the recorded one, changed only by the keys named on the command line (issue 18).
The values expected here are written out by hand from the precedence the docs state
(docs/next-version.md): defaults < config.yaml < recorded (whole top-level values) < named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from workflow_scripts.config import ConfigError, default_config
from workflow_scripts.version_config import from_recorded_config, named_on_command_line

RECORDED = {
    "data_dir": "/archive/sunnybrook",
    "out_dir": "results",
    "version": "1.0.0",
    "contours": ["i", "o"],
    "splits": {"train": 0.5, "test": 0.5},
    "checks": {"max_pixels": 100, "max_mask_fraction": 0.4},
    "exclusions": "",
}


def finished(out_dir: Path, version: str, config: dict) -> Path:
    folder = out_dir / version
    folder.mkdir(parents=True)
    manifest = {"format": 1, "version": version, "config": config}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_configfile_that_is_the_workflows_own_names_nothing(tmp_path):
    own, mine = tmp_path / "config.yaml", tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"contours": ["i"], "version": "1.0.0"}))
    mine.write_text(yaml.safe_dump({"checks": {"max_pixels": "5"}}))
    named = named_on_command_line({"version": "1.1.0"}, [own, mine], [own])
    assert named == {"checks": {"max_pixels": 5}, "version": "1.1.0"}  # typed as the schema says


def test_a_version_made_from_another_takes_the_record_and_only_the_named_keys(tmp_path):
    out = tmp_path / "results"
    finished(out, "1.0.0", RECORDED)
    # what Snakemake hands the workflow: config.yaml's values with the command line merged in
    config = default_config(out_dir=str(out), version="1.1.0", from_version="1.0.0")
    config["checks"]["max_mask_fraction"] = 0.3  # named: checks={max_mask_fraction: 0.3}
    named = {"from_version": "1.0.0", "version": "1.1.0", "checks": {"max_mask_fraction": 0.3}}
    studies_per_job = config["studies_per_job"]
    assert from_recorded_config(config, named) is None
    assert config["version"] == "1.1.0" and config["from_version"] == "1.0.0"
    assert config["out_dir"] == str(out)
    assert config["data_dir"] == "/archive/sunnybrook"  # recorded, not config.yaml's ""
    assert config["contours"] == ["i", "o"]  # recorded, not config.yaml's [i]
    assert config["splits"] == {"train": 0.5, "test": 0.5}  # whole: no "val" from config.yaml
    assert config["checks"] == {"max_pixels": 100, "max_mask_fraction": 0.3}  # named merged in
    assert config["studies_per_job"] == studies_per_job  # not recorded: config.yaml's


def test_a_finished_versions_run_uses_its_record_and_says_what_config_yaml_would_change(
    tmp_path,
):
    out = tmp_path / "results"
    finished(out, "1.0.0", RECORDED)
    config = default_config(out_dir=str(out), data_dir="/archive/sunnybrook")
    note = from_recorded_config(config, {"data_dir": "/archive/sunnybrook"})
    assert config["contours"] == ["i", "o"]
    assert "config.yaml's checks, contours, splits differ from it and are not" in note
    named_contours = default_config(out_dir=str(out), contours=["i"])
    assert from_recorded_config(named_contours, {"contours": ["i"]}) is not None
    assert named_contours["contours"] == ["i"]  # named: the version guard then refuses it


def test_a_new_version_from_config_yaml_is_left_alone(tmp_path):
    config = default_config(out_dir=str(tmp_path / "results"))
    before = copy.deepcopy(config)
    assert from_recorded_config(config, {}) is None
    assert config == before


@pytest.mark.parametrize(
    ("source", "named", "message"),
    [
        ("0.9.0", {"version": "2.0.0"}, "version '0.9.0' in {out} does not exist"),
        ("0.5.0", {"version": "2.0.0"}, "version '0.5.0' in {out} is not finished"),
        ("1.0.0", {}, "a version made from '1.0.0' needs a name of its own"),
        ("1.0.0", {"version": "1.0.0"}, "a version made from '1.0.0' needs a name of its own"),
    ],
)
def test_a_bad_from_version_is_refused_naming_it(tmp_path, source, named, message):
    out = tmp_path / "results"
    finished(out, "1.0.0", RECORDED)
    (out / "0.5.0" / "slices").mkdir(parents=True)
    config = default_config(out_dir=str(out), from_version=source, **named)
    with pytest.raises(ConfigError) as error:
        from_recorded_config(config, {"from_version": source, **named})
    assert message.format(out=out) in str(error.value)
    if "finished" in message or "exist" in message:
        assert f"Finished versions in {out}: 1.0.0; not finished: 0.5.0" in str(error.value)
