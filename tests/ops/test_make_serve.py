"""``make serve`` as a service manager runs it: SIGTERM to make itself reaches the server, which
drains and exits cleanly, and make exits with it (a shell between them died alone, leaving the
server running without a signal)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx

from tests.ops.processes import ROOT, alive, exited, parent_of
from tests.realtime.test_scaleout import _wait_ready
from tests.services import LOG_FILES, free_port, unavailable


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_of(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _start_make(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    LOG_FILES.append(log)  # the session's log check reads it
    with log.open("wb") as out:
        # -o: never reinstall the venv from here, whatever the stamp's age.
        return subprocess.Popen(
            ["make", "-s", "-o", ".venv/.installed-stamp", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_sigterm_to_make_serve_drains_the_server_and_ends_both(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        unavailable("make is not installed")
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("WORKERS", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
        },
        "DATABASE_URL": f"sqlite://{tmp_path / 'agora.sqlite3'}",
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }
    log = tmp_path / "make.log"
    make = _start_make(env, log)
    server = 0
    try:
        await _wait_ready(f"127.0.0.1:{port}")
        [server] = _children(make.pid)  # the server itself: no shell in between
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.json() == {"database": "ok"}
        make.send_signal(signal.SIGTERM)
        code, _ = await exited(make, 20, log)
        # make waited for the server it handed the signal to (then ends by the same signal).
        assert code in (0, -signal.SIGTERM)
        assert not alive(server)
        text = log.read_text()
        # The server drained and shut the application down cleanly (production: JSON lines).
        assert '"event": "Shutting down: accepting no more connections"' in text, text[-2000:]
        assert '"event": "Application shutdown complete."' in text
        assert "Traceback" not in text
    finally:
        if make.poll() is None:
            make.kill()
        for pid in [server, *_children(make.pid)]:
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
