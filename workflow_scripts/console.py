"""What the run prints when it stops on purpose: its own message, and nothing of Snakemake's.

Snakemake 9 prints an exception raised while the Snakefile is read, or in an input function,
with the Snakefile lines it came through (``File ".../common.smk", line 36, in <module>``), and
ends an interrupted run with the stanza of a failed job (``RuleException: CalledProcessError
... exit status 130``, ``Error in rule build_studies``, ``WorkflowError: At least one job did
not complete successfully``). What a workflow controls, and what this module does with it:

- :func:`stop_run`: a refusal (a bad config value, a finished version, an unusable link.csv)
  is printed to standard error as it is and the process exits with status 1
  (``SystemExit``). Snakemake catches ``Exception``, not ``SystemExit``: it prints nothing
  more, and since neither Snakemake's lock nor the version's is taken while the Snakefile is
  read or the DAG built, nothing is left behind.
- :func:`quiet_console_after_interrupt`: after a Ctrl-C, the console handlers of Snakemake's
  logger (never its log file in ``.snakemake/log/``) drop the failed jobs' error records, and
  after the run's one line (:func:`~workflow_scripts.job_failures.interrupted_message`, said by
  ``onerror``) everything, so that line ends the output.

What stays: Snakemake's own lines before the Ctrl-C, its "Terminating processes on user
request" line, and the exit status 1 of a run whose jobs failed (Snakemake decides it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["quiet_console_after_interrupt", "stop_run"]


def stop_run(message: object) -> NoReturn:
    """Print ``message`` (an exception's text, or a string) to standard error and end the run
    with status 1, without a traceback."""
    print(str(message), file=sys.stderr, flush=True)
    raise SystemExit(1)


class _AfterInterrupt(logging.Filter):
    """Drops error records once ``interrupted()`` is true, and every record once ``said()``."""

    def __init__(self, interrupted: Callable[[], bool], said: Callable[[], bool]):
        super().__init__("lv-dataset-interrupt")
        self.interrupted = interrupted
        self.said = said

    def filter(self, record: logging.LogRecord) -> bool:
        if self.said():
            return False
        return not (self.interrupted() and record.levelno >= logging.ERROR)


def quiet_console_after_interrupt(interrupted: Callable[[], bool], said: Callable[[], bool]) -> int:
    """Filter the console handlers of Snakemake's logger as described above; returns how many
    handlers got the filter (0 where a logger plugin replaced them: its output stays as it is).

    A console handler is a ``logging.StreamHandler`` writing to standard output or error (a
    ``FileHandler``, Snakemake's log file, is left alone)."""
    from snakemake.logging import logger  # deferred: snakemake is a heavy import

    quieted = 0
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) or not isinstance(
            handler, logging.StreamHandler
        ):
            continue
        if getattr(handler, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__):
            handler.addFilter(_AfterInterrupt(interrupted, said))
            quieted += 1
    return quieted
