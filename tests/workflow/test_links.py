import pytest

from workflow_scripts.raw.links import LinkTableError, is_safe_name, read_link_table


def write(tmp_path, content: bytes):
    path = tmp_path / "link.csv"
    path.write_bytes(content)
    return path


def test_reads_studies_in_order_with_line_numbers(tmp_path):
    links = read_link_table(write(tmp_path, b"patient_id,original_id\nSCD1,SC-1\nSCD2,SC-2\n"))
    assert [(s.patient_id, s.original_id, s.line) for s in links] == [
        ("SCD1", "SC-1", 2),
        ("SCD2", "SC-2", 3),
    ]


def test_bom_windows_line_endings_spaces_blank_lines_and_extra_columns_are_fine(tmp_path):
    content = "\ufeffnote, patient_id ,original_id\r\nx, SCD1 , SC-1\r\n\r\ny,SCD2,SC-2\r\n"
    links = read_link_table(write(tmp_path, content.encode("utf-8")))
    assert [(s.patient_id, s.original_id, s.line) for s in links] == [
        ("SCD1", "SC-1", 2),
        ("SCD2", "SC-2", 4),
    ]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"patient_id,original_id\n", "no studies"),
        (b"patient,original_id\nA,B\n", "missing column(s) patient_id"),
        (b"patient_id,orig\nA,B\n", "missing column(s) original_id"),
        (
            b"patient_id,original_id\nA,B\nA,C\n",
            "line 3: duplicated patient_id 'A' (first on line 2)",
        ),
        (b"patient_id,original_id\nA,B\nC,B\n", "line 3: duplicated original_id 'B'"),
        (b"patient_id,original_id\nA,\n", "line 2: empty original_id"),
        (
            b"patient_id,original_id\n../x,B\n",
            "line 2: patient_id '../x' is not a plain folder name",
        ),
        (b"patient_id,original_id\nA,/etc\n", "line 2: original_id '/etc'"),
        (b"patient_id,original_id\nA,b/c\n", "line 2: original_id 'b/c'"),
        (b"patient_id,original_id\nA,b\\c\n", "line 2: original_id 'b\\\\c'"),
        (b"patient_id,original_id\n.hidden,B\n", "line 2: patient_id '.hidden'"),
        (b"patient_id,original_id\n\xff\xfe,B\n", "not UTF-8"),
    ],
)
def test_bad_link_tables_are_refused_naming_the_line(tmp_path, content, fragment):
    with pytest.raises(LinkTableError) as raised:
        read_link_table(write(tmp_path, content))
    assert fragment in str(raised.value)
    assert "link.csv" in str(raised.value)


def test_missing_link_table_is_refused(tmp_path):
    with pytest.raises(LinkTableError, match="cannot read"):
        read_link_table(tmp_path / "link.csv")


@pytest.mark.parametrize("name", ["SCD0000101", "SC-HF-I-1", "a.b_c-d", "_x"])
def test_safe_names(name):
    assert is_safe_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "/abs", "a b", ".x", "a\\b"])
def test_unsafe_names(name):
    assert not is_safe_name(name)
