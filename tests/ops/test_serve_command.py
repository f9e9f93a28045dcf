"""``python -m app.serve``'s checks before it serves: several workers refused on SQLite and
without Redis (exit code 2, one paragraph on stderr saying why, nothing touched), a bad setting
as one line rather than a traceback; the metrics folder it prepares; production never seeded."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app import prepare_database
from app.serve import EXIT_REFUSED, prepare_metrics_folder, redacted, refusal
from settings import Settings
from tests.conftest import forget_compiled_statements

ROOT = Path(__file__).resolve().parents[2]
# Settings of the environment this suite runs in that would change what the command sees.
_SCRUBBED = ("DATABASE_URL", "REDIS_URL", "WORKERS", "AGORA_ENV", "PROMETHEUS_MULTIPROC_DIR")


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m app.serve`` with ``env`` (and nothing else of ours) set; it must exit."""
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("SHUT")}
    return subprocess.run(
        [sys.executable, "-m", "app.serve"],
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_two_workers_on_sqlite_are_refused_before_anything_runs(tmp_path: Path) -> None:
    database = tmp_path / "agora.sqlite3"
    done = run_serve({"DATABASE_URL": f"sqlite://{database}", "WORKERS": "2"})
    expected = refusal(Settings(database_url=f"sqlite://{database}", workers=2))
    assert expected is not None
    assert (done.returncode, done.stdout, done.stderr) == (EXIT_REFUSED, "", expected + "\n")
    assert "SQLite is one file with one writer" in expected
    assert "DATABASE_URL=postgres://" in expected and "REDIS_URL=redis://" in expected
    assert "make services" in expected
    assert not database.exists()  # not even migrated


def test_two_workers_without_redis_are_refused(tmp_path: Path) -> None:
    url = "postgres://agora:s3cret@127.0.0.1:1/agora"  # nothing listens there: never reached
    done = run_serve({"DATABASE_URL": url, "WORKERS": "3"})
    expected = refusal(Settings(database_url=url, workers=3))
    assert expected is not None and expected.startswith(
        "agora: refusing WORKERS=3 without REDIS_URL"
    )
    assert "only the subscribers of the worker that published them" in expected
    assert (done.returncode, done.stdout, done.stderr) == (EXIT_REFUSED, "", expected + "\n")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKERS": "0"}, "agora: WORKERS must be at least 1, got 0"),
        ({"WORKERS": "two"}, "agora: WORKERS must be an integer, got 'two'"),
        (
            {"SHUTDOWN_TIMEOUT_SECONDS": "0"},
            "agora: SHUTDOWN_TIMEOUT_SECONDS must be at least 1, got 0",
        ),
        (
            {"SHUTDOWN_DELAY_SECONDS": "-1"},
            "agora: SHUTDOWN_DELAY_SECONDS must be at least 0, got -1",
        ),
        (
            {"DATABASE_URL": "mysql://root:pw@db/agora"},
            "agora: DATABASE_URL must be sqlite://FILE or postgres://user:pass@host:port/db, "
            "got 'mysql://root:…@db/agora'.",
        ),
    ],
)
def test_a_bad_setting_is_one_line_not_a_traceback(env: dict[str, str], message: str) -> None:
    done = run_serve(env)
    assert (done.returncode, done.stdout, done.stderr) == (EXIT_REFUSED, "", message + "\n")


def test_what_can_be_served() -> None:
    assert refusal(Settings()) is None  # one process on SQLite
    assert (
        refusal(Settings(database_url="postgres://a@h/d", workers=4, redis_url="redis://r/0"))
        is None
    )
    assert refusal(Settings(database_url="postgresql://a@h/d", workers=1)) is None


def test_urls_in_messages_lose_their_password() -> None:
    assert redacted("postgres://agora:s3cret@db:5432/agora") == "postgres://agora:…@db:5432/agora"
    assert redacted("postgres://agora@db/agora") == "postgres://agora@db/agora"
    assert redacted("sqlite://agora.sqlite3") == "sqlite://agora.sqlite3"
    # Too malformed to split (urlsplit raises): the scheme only, never a traceback.
    assert redacted("postgres://agora:s3cret@[::1/agora") == "postgres://…"


def test_the_operators_metrics_folder_is_emptied_of_old_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    own = f"counter_{os.getpid()}.db"  # this process's, already written to (metrics is imported)
    for name in ("counter_101.db", "gauge_livesum_101.db", "README", own):
        (folder / name).write_text("x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert prepare_metrics_folder(4) is None  # not ours to remove later
    assert sorted(path.name for path in folder.iterdir()) == ["README", own]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)


def test_several_workers_get_a_fresh_metrics_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert prepare_metrics_folder(1) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    created = prepare_metrics_folder(2)
    try:
        assert created is not None and created.is_dir() and list(created.iterdir()) == []
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(created)
    finally:
        # Not monkeypatch.delenv: its undo would put the removed folder back in the
        # environment, for every later server this worker starts to inherit (a CI failure).
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if created is not None:
            created.rmdir()


async def test_production_migrates_and_never_seeds(tmp_path: Path) -> None:
    database = tmp_path / "production.sqlite3"
    forget_compiled_statements()
    await prepare_database(Settings(env="production", database_url=f"sqlite://{database}"))
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
