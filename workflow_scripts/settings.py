"""Checks on the configuration that its JSON schema cannot express, and where things go.

Everything here runs when the Snakefile is parsed, before any job: a bad value stops the run
with a message naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConfigError", "Layout", "check_config"]

#: Folder names under out_dir that belong to the workflow, so no version may take them.
RESERVED_NAMES = ("logs", "work")


class ConfigError(ValueError):
    """A configuration value that makes the build meaningless."""


@dataclass(frozen=True)
class Layout:
    """Where the build reads and writes (all paths as given, relative to the working folder
    unless absolute).

    ``version_dir`` holds the dataset and nothing else; ``work_dir`` the intermediate study
    records; ``log_dir`` the jobs' logs; ``phantom_dir`` the generated raw phantom.
    """

    data_dir: Path
    out_dir: Path
    version: str
    phantom: bool

    @property
    def version_dir(self) -> Path:
        return self.out_dir / self.version

    @property
    def work_dir(self) -> Path:
        return self.out_dir / "work" / self.version

    @property
    def log_dir(self) -> Path:
        return self.out_dir / "logs" / self.version

    def pairs_file(self, study: str) -> Path:
        """The study's pairing table (``study`` may be a ``{study}`` wildcard pattern)."""
        return self.version_dir / "pairs" / f"{study}.parquet"

    def slices_dir(self, study: str) -> Path:
        return self.version_dir / "slices" / study

    def qc_dir(self, study: str) -> Path:
        return self.version_dir / "qc" / study

    def study_record(self, study: str) -> Path:
        """The study's record for the aggregate steps (samples, problems, digests)."""
        return self.work_dir / "studies" / f"{study}.json"

    @classmethod
    def from_config(cls, config: dict) -> Layout:
        out_dir = Path(config["out_dir"])
        if config["data_dir"]:
            return cls(Path(config["data_dir"]), out_dir, config["version"], phantom=False)
        # "_" cannot start a version name, so the phantom never collides with a version.
        return cls(out_dir / "work" / "_phantom", out_dir, config["version"], phantom=True)


def check_config(config: dict) -> Layout:
    """Check what the schema cannot and return the build's Layout.

    Raises ConfigError naming the key: split fractions that do not add up to 1, percentiles out
    of order, a reserved version name, a data_dir that is missing or lacks link.csv, or an
    out_dir inside data_dir (the build must never write into the raw data) or the reverse.
    """
    splits = config["splits"]
    total = sum(splits.values())
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(f"splits: the fractions {splits} add up to {total:g}, not 1")
    low, high = config["qc"]["percentiles"]
    if not low < high:
        raise ConfigError(f"qc.percentiles: {low} must be below {high}")
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
