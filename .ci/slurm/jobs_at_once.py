"""How a rule's cluster jobs ran, in a Snakemake SLURM run: at most how many at once, and
for how long.

    python .ci/slurm/jobs_at_once.py SNAKEMAKE_OUTPUT RULE

Reads the SLURM job ids of the rule's jobs from Snakemake's output and their start and end
times from ``squeue --states=all`` (the test cluster keeps finished jobs for MinJobAge); prints
two numbers: the largest number of them running at one moment, and the seconds from the first
one's start to the last one's end as SLURM saw them (1 s resolution; no submission or status
polling latency). ``0 0`` when none was found.
"""

import re
import subprocess
import sys
from datetime import datetime


def main(output_path: str, rule: str) -> tuple[int, int]:
    text = open(output_path, encoding="utf-8", errors="replace").read()
    # The plugin's line for each submission: "... SLURM jobid 12 (log: .../rule_<rule>/...)".
    ids = re.findall(rf"SLURM jobid (\d+) \(log: [^)]*/rule_{re.escape(rule)}/", text)
    if not ids:
        return 0, 0
    listing = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i %S %e", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spans = [line.split()[1:3] for line in listing.splitlines() if len(line.split()) == 3]
    if not spans:
        return 0, 0
    # ISO times (YYYY-MM-DDTHH:MM:SS) compare as strings.
    at_once = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    first = datetime.fromisoformat(min(start for start, _ in spans))
    last = datetime.fromisoformat(max(end for _, end in spans))
    return at_once, round((last - first).total_seconds())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(*main(sys.argv[1], sys.argv[2]))
