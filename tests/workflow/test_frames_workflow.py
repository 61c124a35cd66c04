"""``frames: all`` end to end with Snakemake: given on the command line, the cines and
frames.parquet built by the rules (the same bytes as the workflow's functions called directly),
listed in the manifest, a rerun with nothing to do, another value refused, and
``from_version`` carrying the key into a new version."""

from __future__ import annotations

import pytest

from build_helpers import build_by_calls, tree_digests
from conftest import run_workflow
from loader import load_cine
from loader.manifest import read_whole_manifest
from workflow_scripts.config import default_config
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow


def test_a_frames_all_version_is_built_by_the_rules_recorded_and_guarded(tmp_path):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=3, slices=10, size=64))

    def build(*config, check=True):
        return run_workflow(
            tmp_path, "--config", f"data_dir={raw}", "out_dir=out", *config, check=check
        )

    build("frames=all")
    version = tmp_path / "out" / "1.0.0"
    manifest = read_whole_manifest(version / "manifest.json")
    assert manifest["build_config"]["frames"] == "all"
    assert {"frames.parquet", "cines/PHANTOM0001.npy"} <= set(manifest["outputs"])
    images, frames = load_cine(version, "PHANTOM0001")
    assert images.shape == (3, 4, 64, 64) and int(frames["present"].sum()) == 10

    by_calls = tmp_path / "calls"
    build_by_calls(default_config(data_dir=str(raw), out_dir=str(by_calls), frames="all"))
    assert tree_digests(version) == tree_digests(by_calls / "1.0.0")

    again = build("frames=all", "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
    refused = build("frames=labelled", check=False)
    assert refused.returncode != 0
    assert "config frames: 'all' -> 'labelled'" in refused.stdout + refused.stderr

    build("from_version=1.0.0", "version=1.0.1")
    derived = read_whole_manifest(tmp_path / "out" / "1.0.1" / "manifest.json")
    assert derived["build_config"]["frames"] == "all"
    assert (tmp_path / "out" / "1.0.1" / "cines" / "PHANTOM0003.npy").is_file()
