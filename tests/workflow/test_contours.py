import numpy as np
import pytest

from workflow_scripts.raw.contours import parse_contour, parse_contour_name
from workflow_scripts.raw.problems import InputProblem


def test_parse_contour_reads_x_y_pairs_in_file_order():
    points = parse_contour("120.50 137.50\n120.50 137.00\n\n121.00 136.50\n")
    assert points.dtype == np.float64
    assert points.tolist() == [[120.5, 137.5], [120.5, 137.0], [121.0, 136.5]]


def test_parse_contour_accepts_windows_line_endings_and_spaces():
    points = parse_contour("  1 2\r\n3\t4\r\n5 6  \r\n")
    assert points.tolist() == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("", "contour_empty", "no points"),
        ("\n \n", "contour_empty", "no points"),
        ("1 2\n3 4\n", "contour_too_few_points", "2 point"),
        ("1 2\n3 4\nfoo bar\n", "contour_unparseable", "line 3"),
        ("1 2\n3 4 5\n6 7\n", "contour_unparseable", "line 2"),
        ("1 2\nnan 4\n5 6\n", "contour_not_finite", "line 2"),
        ("1 2\n3 inf\n5 6\n", "contour_not_finite", "line 2"),
    ],
)
def test_parse_contour_rejects_bad_files_with_code_and_line(text, code, fragment):
    with pytest.raises(InputProblem) as raised:
        parse_contour(text)
    assert raised.value.code == code
    assert fragment in raised.value.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IM-0001-0048-icontour-manual.txt", (48, "i")),
        ("IM-0001-0200-ocontour-manual.txt", (200, "o")),
        ("IM-0001-48-icontour-manual.txt", None),
        ("._IM-0001-0048-icontour-manual.txt", None),
        ("IM-0001-0048-xcontour-manual.txt", None),
    ],
)
def test_parse_contour_name(name, expected):
    assert parse_contour_name(name) == expected
