"""Compare two built dataset version folders: local build vs SLURM build.

    python .ci/slurm/compare_datasets.py LOCAL_VERSION_DIR SLURM_VERSION_DIR

Every file under the two folders must exist in both and be byte-for-byte equal,
except the top-level manifest.json (it records built_at and the config, whose
out_dir differs) and, in manifest format 2, its inputs table (the inputs'
modification times differ between two builds of the phantom, which each run
generates); of the manifest only the "outputs" table (path -> sha256, size;
in format 2 manifest.outputs.parquet, compared as a file, and its digest) must
be equal. Exits 1 naming every difference, 0 when identical.
"""

import filecmp
import json
import sys
from pathlib import Path

MANIFEST = "manifest.json"
# the part of the manifest (format 2) that records when the inputs were last changed
MANIFEST_INPUT_TABLES = {"manifest.inputs.parquet"}


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def main(a: Path, b: Path) -> int:
    problems = []
    for d in (a, b):
        if not (d / MANIFEST).is_file():
            problems.append(f"{d}: no {MANIFEST} (the build did not finish)")
    if problems:
        print("\n".join(problems))
        return 1
    skipped = {MANIFEST, *MANIFEST_INPUT_TABLES}
    fa, fb = files(a) - skipped, files(b) - skipped
    problems += [f"only in {a}: {p}" for p in sorted(fa - fb)]
    problems += [f"only in {b}: {p}" for p in sorted(fb - fa)]
    common = sorted(fa & fb)
    problems += [f"differs: {p}" for p in common if not filecmp.cmp(a / p, b / p, shallow=False)]
    ma = json.loads((a / MANIFEST).read_text(encoding="utf-8"))
    mb = json.loads((b / MANIFEST).read_text(encoding="utf-8"))
    # format 2 keeps the outputs in manifest.outputs.parquet (compared above as a file): its
    # digest in manifest.json stands for them
    oa = ma.get("outputs") or ma.get("tables", {}).get("outputs")
    ob = mb.get("outputs") or mb.get("tables", {}).get("outputs")
    if not oa:
        problems.append(f"{a / MANIFEST}: no 'outputs'")
    elif oa != ob:
        keys = sorted(set(oa) | set(ob or {}))
        bad = [k for k in keys if oa.get(k) != (ob or {}).get(k)]
        problems.append(f"manifest 'outputs' differ for {len(bad)} path(s): {bad[:10]}")
    if problems:
        print(f"DIFFERENT: {a} vs {b}")
        print("\n".join(f"  {p}" for p in problems[:50]))
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more")
        return 1
    print(f"identical: {len(common)} files (+ manifest outputs, {len(oa)} entries)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
