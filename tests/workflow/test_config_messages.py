"""Config errors as a person reads them, and --config values typed as the schema asks."""

from __future__ import annotations

from workflow_scripts.config import command_line_values_typed, config_problems


def test_nested_command_line_strings_get_the_schema_types():
    # what Snakemake's parser makes of --config 'checks={max_pixels: 5}' 'qc={...}' ...
    config = {
        "version": "2",
        "checks": {"max_pixels": "5", "max_mask_fraction": "0.25"},
        "qc": {"percentiles": ["2", "98.5"], "window": "dicom"},
        "phantom": {"studies": "3", "faults": "false"},
    }
    command_line_values_typed(config)
    assert config == {
        "version": "2",  # a string in the schema: left alone
        "checks": {"max_pixels": 5, "max_mask_fraction": 0.25},
        "qc": {"percentiles": [2.0, 98.5], "window": "dicom"},
        "phantom": {"studies": 3, "faults": False},
    }


def test_strings_that_are_not_numbers_are_left_for_the_schema_to_refuse(tmp_path):
    config = {"data_dir": "", "out_dir": "r", "version": "1", "checks": {"max_pixels": "many"}}
    command_line_values_typed(config)
    assert config["checks"]["max_pixels"] == "many"
    message = config_problems(config, tmp_path / "detail.txt")
    assert "checks.max_pixels = 'many': must be of type integer" in message


def test_a_valid_config_has_no_problems(tmp_path):
    config = {"data_dir": "", "out_dir": "results", "version": "1.0.0", "contours": ["i", "o"]}
    assert config_problems(config, tmp_path / "detail.txt") is None
    assert not (tmp_path / "detail.txt").exists()


def test_a_typo_names_the_nearest_key_and_the_valid_ones(tmp_path):
    message = config_problems(
        {"data_dir": "", "out_dir": "r", "version": "1", "qc": {"windw": "dicom"}},
        tmp_path / "detail.txt",
    )
    assert "'qc.windw' is not a setting of this workflow (did you mean 'qc.window'?)" in message
    assert "valid keys of qc: percentiles, sheet_columns, window" in message
    assert str(tmp_path / "detail.txt") in message
    assert "Additional properties" in (tmp_path / "detail.txt").read_text()


def test_at_most_three_problems_are_shown_and_the_rest_counted(tmp_path):
    config = {
        "data_dir": "",
        "out_dir": "",
        "version": "../v",
        "contours": ["o"],
        "split_seed": -1,
    }
    message = config_problems(config, tmp_path / "detail.txt")
    assert message.startswith("Invalid configuration (and 1 more):")
    assert message.count("\n  - ") == 3
