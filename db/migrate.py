"""Apply the committed migrations: ``python -m db.migrate`` (``make run`` does it first)."""

from __future__ import annotations

import asyncio
import logging

from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from db.config import tortoise_config
from logs import get_logger
from settings import Settings, load_settings

logger = get_logger("agora.migrate")


# The session-level advisory lock every instance takes around its migrations on PostgreSQL
# (any constant: "agora" in ASCII).
MIGRATION_LOCK = 0x61676F7261


async def apply_migrations(settings: Settings) -> None:
    """Bring the database at ``settings.database_url`` to the latest migration.

    On PostgreSQL, instances starting at once (a rollout of two) take turns: unserialised, one
    of them failed on the other's half-made tables and exited. The second finds nothing to do.
    """
    lock = None
    if not settings.is_sqlite:
        import asyncpg

        lock = await asyncpg.connect(settings.database_url, timeout=settings.db_timeout_seconds)
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await migrate(config=tortoise_config(settings))
    finally:
        await Tortoise.close_connections()
        if lock is not None:
            # Closing the session releases its lock.
            await lock.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    asyncio.run(apply_migrations(settings))
    logger.info("migrations applied to %s", settings.database_url.split("@")[-1])


if __name__ == "__main__":
    main()
