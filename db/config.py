"""Tortoise configuration built from the settings (also read by Tortoise's CLI via pyproject)."""

from __future__ import annotations

from typing import Any

from settings import Settings, load_settings

MODELS_MODULE = "db.models"
MIGRATIONS_MODULE = "db.migrations"


async def keep_session(connection: Any) -> None:
    """asyncpg's pool reset: nothing to undo (see ``tortoise_config``)."""


def tortoise_config(settings: Settings) -> dict[str, Any]:
    """The Tortoise config dict for ``settings.database_url``."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = url.split("://", 1)[1].split("?", 1)[0]
        connection: dict[str, Any] = {
            "engine": "tortoise.backends.sqlite",
            "credentials": {
                "file_path": path,
                "journal_mode": "WAL",
                "journal_size_limit": 16384,
                "foreign_keys": "ON",
                # WAL + NORMAL: a commit is in the OS's hands before it answers, so a killed
                # process loses nothing; the WAL is fsynced at checkpoints, so a power loss
                # may undo the last commits (never corrupt). FULL fsyncs every commit.
                "synchronous": settings.sqlite_synchronous,
            },
        }
    elif url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        from tortoise.backends.base.config_generator import expand_db_url

        connection = expand_db_url("postgres://" + url.split("://", 1)[1])
        connection["engine"] = "tortoise.backends.asyncpg"
        connection["credentials"]["minsize"] = 1
        connection["credentials"]["maxsize"] = settings.db_pool_size
        # A database that stops answering is an answer within DB_TIMEOUT_SECONDS (503), not
        # requests that hang: asyncpg's connect timeout, and its timeout for every statement.
        connection["credentials"]["timeout"] = settings.db_timeout_seconds
        # A statement that times out is cancelled by a CancelRequest on a new connection, which
        # asyncpg also bounds by command_timeout, and the pool waits for it before the error
        # reaches the resolver: half the budget each keeps a hung database's 503 within
        # DB_TIMEOUT_SECONDS, not twice it.
        connection["credentials"]["command_timeout"] = settings.db_timeout_seconds / 2
        # Tortoise takes a pooled connection per statement, and asyncpg's default release sends
        # a reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL): a second round trip for
        # every read, 14 % of an article page's CPU. Nothing here leaves session state on a
        # pooled connection (tests/core/test_pool_reset.py keeps it so); an open transaction
        # is still rolled back by asyncpg before this is called.
        connection["credentials"]["reset"] = keep_session
    else:
        raise ValueError(f"unsupported DATABASE_URL scheme: {url.split('://', 1)[0]!r}")
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# For Tortoise's command line (`tortoise makemigrations`), via [tool.tortoise] in pyproject.
TORTOISE_ORM = tortoise_config(load_settings())
