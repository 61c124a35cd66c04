"""Framework adapters cost nothing when their framework is absent, and say what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest
from loader_helpers import build_dataset

from conftest import REPO
from loader import BatchLoader, keras_dataset, torch_dataset


def test_importing_loader_imports_no_framework_and_no_pandas():
    code = (
        "import sys, loader; "
        "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'pandas', 'pyarrow') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("framework", "adapter"), [("keras", keras_dataset), ("torch", torch_dataset)]
)
def test_a_missing_framework_gives_an_import_error_saying_what_to_install(
    tmp_path, monkeypatch, framework, adapter
):
    data = build_dataset(tmp_path, study_sizes=(2,))
    monkeypatch.setitem(sys.modules, framework, None)  # makes "import <framework>" fail
    with pytest.raises(ImportError, match=f"pip install {framework}"):
        adapter(BatchLoader(data.root, batch_size=2))
