"""Persistence: Tortoise models, connection configuration, migrations and demo data."""
