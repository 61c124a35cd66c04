import os

import pytest

from workflow_scripts.job_pool import run_in_pool


def square(x):
    return x * x, os.getpid()


def fail(message):
    raise ValueError(message)


def die():
    os._exit(3)


def test_work_runs_in_a_reused_worker_process():
    (value, pid_a), (_, pid_b) = (
        run_in_pool(square, 7, workers=1),
        run_in_pool(square, 2, workers=1),
    )
    assert value == 49
    assert pid_a == pid_b != os.getpid()


def test_exceptions_propagate_to_the_job():
    with pytest.raises(ValueError, match="bad study"):
        run_in_pool(fail, "bad study", workers=1)


def test_a_dead_worker_fails_its_job_and_the_pool_is_replaced():
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        run_in_pool(die, workers=1)
    assert run_in_pool(square, 3, workers=1)[0] == 9
