import re

import pytest

from conftest import REPO
from workflow_scripts.raw.problems import CODES, ERROR, WARNING, InputProblem, Problem


def documented_codes() -> dict[str, tuple[str, str]]:
    """The codes documented in the README and the docs pages (each page documents its own)."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    rows = re.findall(r"^\| `([a-z_]+)` \| (error|warning) \| (.+?) \|$", text, flags=re.M)
    return {code: (severity, meaning) for code, severity, meaning in rows}


def test_docs_document_every_problem_code_as_defined():
    assert documented_codes() == CODES


def test_every_code_has_a_known_severity():
    assert {severity for severity, _ in CODES.values()} == {ERROR, WARNING}


def test_unknown_codes_are_refused():
    with pytest.raises(KeyError):
        InputProblem("no_such_code", "x")


def test_problem_row_carries_its_severity():
    row = Problem("S", "dicoms/S/1.dcm", "dicom_unreadable", "truncated", 1).as_row()
    assert row["severity"] == "error" and row["slice"] == 1 and row["contour"] is None
