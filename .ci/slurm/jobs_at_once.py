"""The most cluster jobs of one rule that ran at the same time, in a Snakemake SLURM run.

    python .ci/slurm/jobs_at_once.py SNAKEMAKE_OUTPUT RULE

Reads the SLURM job ids of the rule's jobs from Snakemake's output and their start and end
times from ``squeue --states=all`` (the test cluster keeps finished jobs for MinJobAge); prints
the largest number of them running at one moment (0 when none was found).
"""

import re
import subprocess
import sys


def main(output_path: str, rule: str) -> int:
    text = open(output_path, encoding="utf-8", errors="replace").read()
    # Each job's block names its rule, then the plugin's line with the SLURM job id.
    ids = re.findall(
        rf"rule {re.escape(rule)}:(?:(?!\nrule |\nlocalrule ).)*?SLURM jobid (\d+)", text, re.S
    )
    if not ids:
        return 0
    listing = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i %S %e", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spans = [line.split()[1:3] for line in listing.splitlines() if len(line.split()) == 3]
    # ISO times (YYYY-MM-DDTHH:MM:SS) compare as strings.
    return max((sum(1 for s, e in spans if s <= start < e) for start, _ in spans), default=0)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(main(sys.argv[1], sys.argv[2]))
