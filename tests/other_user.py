"""Running a command as a second, unprivileged user, to test what other users can read.

Needs root (to create the user and switch to it) and permission to make a private mount
namespace (``unshare -m``). The test interpreter often lives where only root may go (pyenv
under ``/root``, mode 0700); the command then runs in a private mount namespace where that
folder is replaced by a world-traversable tmpfs into which just the needed sub-folders are
bind-mounted back, so the other user reaches the interpreter and the repository but nothing
else of root's. The host's mounts and modes are never changed.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

USER = "lvds-reader"


class CannotSwitchUser(RuntimeError):
    """This machine does not let the test run a command as another user."""


def ensure_user() -> str:
    """Create the unprivileged test user when missing; return its name."""
    if os.geteuid() != 0:
        raise CannotSwitchUser("not running as root: cannot create or switch to another user")
    for tool in ("useradd", "setpriv", "unshare", "mount"):
        if shutil.which(tool) is None:
            raise CannotSwitchUser(f"{tool} is not installed")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise CannotSwitchUser(f"useradd failed: {result.stderr.strip()}") from None
    return USER


def _blocking_folders(path: Path) -> list[Path]:
    """The ancestors of ``path`` that other users cannot traverse, outermost first."""
    return [a for a in reversed(path.resolve().parents) if not a.stat().st_mode & 0o001]


def run_as_other_user(
    argv: list[str], needed: list[Path], cwd: Path
) -> subprocess.CompletedProcess:
    """Run ``argv`` as the test user, with ``needed`` paths reachable (see the module docstring).

    Raises CannotSwitchUser when that is impossible here.
    """
    user = ensure_user()
    covers: dict[Path, set[str]] = {}
    for path in needed:
        blocking = _blocking_folders(path)
        if len(blocking) > 1:
            raise CannotSwitchUser(f"{path} lies below more than one private folder")
        if blocking:
            blocked = blocking[0]
            covers.setdefault(blocked, set()).add(path.resolve().relative_to(blocked).parts[0])
    scratch = Path(tempfile.mkdtemp(prefix="lvds-ns-"))
    steps = []
    for number, (blocked, children) in enumerate(sorted(covers.items())):
        original = scratch / str(number)
        original.mkdir()
        steps += [
            f"mount --bind {shlex.quote(str(blocked))} {shlex.quote(str(original))}",
            f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(blocked))}",
        ]
        for child in sorted(children):
            target, source = blocked / child, original / child
            make = "mkdir -p" if target.is_dir() else "touch"  # seen before the tmpfs hides it
            steps += [
                f"{make} {shlex.quote(str(target))}",
                f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}",
            ]
    switch = f"exec setpriv --reuid={user} --regid={user} --clear-groups " + shlex.join(argv)
    script = " && ".join([*steps, f"cd {shlex.quote(str(cwd))}", switch])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "LANG": "C.UTF-8"}
    try:
        result = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if (
        result.returncode != 0
        and "mount" in result.stderr
        and "permission denied" in (result.stderr.lower())
    ):
        raise CannotSwitchUser(f"cannot make a private mount namespace: {result.stderr.strip()}")
    return result


def interpreter_paths() -> list[Path]:
    """What a second user needs to run this test's Python with its packages."""
    return [Path(sys.executable), Path(sys.prefix), Path(sys.base_prefix)]
