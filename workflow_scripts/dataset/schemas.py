"""The schemas of the version's index.parquet and validation.parquet, shared by the study
builds (which fill their rows), the batches' tables and the version's tables."""

from __future__ import annotations

import pyarrow as pa

from loader.index_columns import INDEX_COLUMNS

__all__ = ["INDEX_SCHEMA", "SAMPLE_SCHEMA", "VALIDATION_SCHEMA"]


def _arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a type name of :data:`loader.index_columns.INDEX_COLUMNS`."""
    if kind.startswith("float64["):
        return pa.list_(pa.float64(), int(kind[len("float64[") : -1]))
    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "float64": pa.float64(),
    }[kind]


#: index.parquet's schema, from the one list of its columns and their meaning
#: (:data:`loader.index_columns.INDEX_COLUMNS`; ``docs/index-columns.md``).
INDEX_SCHEMA = pa.schema([(name, _arrow_type(kind)) for name, (kind, _) in INDEX_COLUMNS.items()])

VALIDATION_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("slice", pa.int32()),
        ("path", pa.string()),
        ("contour", pa.string()),
        ("code", pa.string()),
        ("severity", pa.string()),
        ("message", pa.string()),
        ("value", pa.float64()),
    ]
)

#: The index columns a study's build fills: all but ``version`` and ``split``, which the
#: version's index adds.
SAMPLE_SCHEMA = pa.schema(
    [field for field in INDEX_SCHEMA if field.name not in ("version", "split")]
)
