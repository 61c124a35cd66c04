"""What the look for contours copied between studies adds to the index step, at scale.

The index step (rule ``index_dataset``) reads every study record and writes the index; since
copied labels are looked for, it also groups the points digests the records carry
(``copies_between_studies``) and the records are longer by one digest per contour. This script
builds synthetic records (``--studies`` studies of ``--samples`` samples, each with an i- and
every other one an o-contour; every sample row has all of ``INDEX_SCHEMA``'s columns, filled
like a real one) and prints, measured in the same run:

- the time of ``index_table`` over the records (the step's existing work, the baseline), and
  of ``copies_between_studies`` over the same records, as a ratio to it;
- the time of reading the records back from JSON (``load_records``) with and without the
  digests, and the records' bytes, with and without: what carrying the digests costs.

Timings are the best of ``--rounds`` rounds (noise on a shared machine only slows a run down).
Run: ``python benchmarks/copied_contours.py`` (about a minute at the defaults).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from workflow_scripts.dataset.batch_tables import batch_tables, load_records
from workflow_scripts.dataset.tables import (
    INDEX_SCHEMA,
    copies_between_studies,
    index_table,
)

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def synthetic_records(studies: int, samples: int) -> list[dict]:
    records = []
    for study in range(studies):
        study_id, original = f"SCD{study:07d}", f"SC-X-{study}"
        rows, digests = [], {}
        for number in range(1, samples + 1):
            folder = (
                f"contourfiles/{original}/%s-contours/IM-0001-{number:04d}-%scontour-manual.txt"
            )
            icontour = folder % ("i", "i")
            ocontour = folder % ("o", "o") if number % 2 else None
            row = {}
            for field in INDEX_SCHEMA:
                if field.name in ("version", "split"):
                    continue
                kind = str(field.type)
                row[field.name] = (
                    [1.0] * (3 if "3" in kind else 6) if kind.startswith("fixed_size_list")
                    else 1.5 if kind == "double" else 7 if kind.startswith("int")
                    else True if kind == "bool" else "x" * 24
                )  # fmt: skip
            row.update(study_id=study_id, original_id=original, slice=number,
                       icontour=icontour, ocontour=ocontour, flags="")  # fmt: skip
            rows.append(row)
            for path in (icontour, ocontour):
                if path:
                    digests[path] = hashlib.sha256(path.encode()).hexdigest()[:32]
        records.append({"study_id": study_id, "original_id": original, "samples": rows,
                        "problems": [], "contour_digests": digests})  # fmt: skip
    return records


def best(function, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    records = synthetic_records(args.studies, args.samples)
    contours = sum(len(record["contour_digests"]) for record in records)
    print(f"{args.studies} studies, {args.studies * args.samples} samples, {contours} contours")

    tables = batch_tables(Path("."), records)
    index = best(lambda: index_table(tables["samples"], "1", FRACTIONS, 0), args.rounds)
    copies = best(lambda: copies_between_studies(tables["contours"]), args.rounds)
    print(f"index_table            {index:7.2f} s  (baseline)")
    print(f"copies_between_studies {copies:7.2f} s  {copies / index:.3f} x the baseline")

    with tempfile.TemporaryDirectory() as folder:
        sizes = {}
        for name, keep in (("without", False), ("with", True)):
            paths = []
            for record in records:
                data = (
                    record if keep else {k: v for k, v in record.items() if k != "contour_digests"}
                )
                path = Path(folder) / name / f"{record['study_id']}.json"
                path.parent.mkdir(exist_ok=True)
                path.write_text(json.dumps(data, indent=1, sort_keys=True))
                paths.append(path)
            sizes[name] = (sum(p.stat().st_size for p in paths), paths)
        read = {
            name: best(lambda paths=paths: load_records(paths), args.rounds)
            for name, (_, paths) in sizes.items()
        }
    without, with_digests = sizes["without"][0], sizes["with"][0]
    print(f"records' bytes: {without / 1e6:.1f} MB without digests, {with_digests / 1e6:.1f} MB "
          f"with ({with_digests / without:.3f} x)")  # fmt: skip
    print(f"load_records: {read['without']:.2f} s without, {read['with']:.2f} s with "
          f"({read['with'] / read['without']:.3f} x)")  # fmt: skip


if __name__ == "__main__":
    main()
