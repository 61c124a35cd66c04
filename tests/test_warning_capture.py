"""Library warnings reach the log of the job (thread) that raised them, not the console.

pytest records warnings itself (replacing the very hook under test), so these checks run in a
fresh interpreter, as the Snakemake process does.
"""

import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )


def test_pydicom_warnings_are_captured_every_time_and_not_printed():
    result = run_python(
        """
        from pydicom.config import WARN
        from pydicom.valuerep import validate_value
        from workflow_scripts.warning_capture import captured_warnings
        with captured_warnings() as caught:
            for _ in range(3):  # the same warning from the same line, as for every real file
                validate_value("UI", "1.2.03", WARN)
        print(len(caught), caught[0].startswith("UserWarning: Invalid value for VR UI: '1.2.03'"))
        """
    )
    assert result.stdout.strip() == "3 True"
    assert "Invalid value" not in result.stderr


def test_concurrent_jobs_each_get_their_own_warnings():
    result = run_python(
        """
        import threading
        from pydicom.misc import warn_and_log
        from workflow_scripts.warning_capture import captured_warnings
        barrier, results = threading.Barrier(2), {}
        def job(name):
            with captured_warnings() as caught:
                barrier.wait()
                for number in range(200):
                    warn_and_log(f"{name} {number}")
                barrier.wait()
            results[name] = caught
        threads = [threading.Thread(target=job, args=(name,)) for name in "ab"]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        for name in "ab":
            assert results[name] == [f"UserWarning: {name} {n}" for n in range(200)], name
        print("ok")
        """
    )
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""


def test_warnings_outside_a_capture_are_shown_as_usual():
    result = run_python(
        """
        from pydicom.misc import warn_and_log
        from workflow_scripts.warning_capture import captured_warnings
        with captured_warnings():
            pass
        warn_and_log("plain warning")
        """
    )
    assert "plain warning" in result.stderr
