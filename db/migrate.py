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


async def apply_migrations(settings: Settings) -> None:
    """Bring the database at ``settings.database_url`` to the latest migration."""
    try:
        await migrate(config=tortoise_config(settings))
    finally:
        await Tortoise.close_connections()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    asyncio.run(apply_migrations(settings))
    logger.info("migrations applied to %s", settings.database_url.split("@")[-1])


if __name__ == "__main__":
    main()
