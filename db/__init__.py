"""Persistence: Tortoise models, connection configuration, migrations, health and SQL helpers."""
