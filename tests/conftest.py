"""Fixtures: every app test runs on SQLite and again on a real PostgreSQL."""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app import create_app
from db.config import tortoise_config
from db.migrate import apply_migrations
from settings import Settings
from tests.services import PostgresServer, create_database, start_postgres

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


async def new_database(request: pytest.FixtureRequest, backend: str, tmp_dir: Any) -> str:
    """An empty database of ``backend``; returns its DATABASE_URL."""
    if backend == "sqlite":
        return f"sqlite://{tmp_dir}/agora-{uuid.uuid4().hex[:8]}.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return await create_database(server, f"agora_test_{uuid.uuid4().hex[:12]}")


def forget_compiled_statements() -> None:
    """Tortoise caches INSERT/UPDATE SQL per connection *name*, not per dialect: a process that
    moves between SQLite and PostgreSQL (only this suite does) must drop the cache each time."""
    EXECUTOR_CACHE.clear()


async def prepare_database(url: str, demo: bool) -> Settings:
    """Migrate the database at ``url`` (and load the demo data); returns its settings."""
    forget_compiled_statements()
    settings = Settings(database_url=url, env="test")
    await apply_migrations(settings)
    if demo:
        from db.seed import load_demo_data

        await Tortoise.init(config=tortoise_config(settings))
        try:
            await load_demo_data()
        finally:
            await Tortoise.close_connections()
    return settings


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def demo_settings(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the demo data, shared by the read-only tests of a backend."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    return await prepare_database(url, demo=True)


@pytest.fixture
async def fresh_settings(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated, empty database for a test that writes."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    return await prepare_database(url, demo=False)


class GraphQLClient:
    """Sends GraphQL over HTTP the way browsers do."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a query that must succeed."""
        body = await self.post(query, variables)
        assert "errors" not in body, json.dumps(body["errors"], indent=1)
        data: dict[str, Any] = body["data"]
        return data


async def _client_for(settings: Settings) -> AsyncIterator[GraphQLClient]:
    forget_compiled_statements()
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield GraphQLClient(http)


@pytest.fixture
async def client(demo_settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client of an app on the shared demo database."""
    async for gql in _client_for(demo_settings):
        yield gql


@pytest.fixture
async def fresh_client(fresh_settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client of an app on its own empty database."""
    async for gql in _client_for(fresh_settings):
        yield gql


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with some values changed."""
    return replace(settings, **changes)


class SqlCounter:
    """Counts the SQL statements sent through the default connection."""

    METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many")

    def __init__(self) -> None:
        self.statements: list[str] = []

    @contextmanager
    def counting(self) -> Iterator[SqlCounter]:
        conn = connections.get("default")
        originals = {name: getattr(conn, name) for name in self.METHODS}
        # Per task, so that concurrent statements all count but one calling another doesn't.
        inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)

        def wrap(name: str) -> Any:
            original = originals[name]

            async def counted(query: str, *args: Any, **kwargs: Any) -> Any:
                if inside.get():
                    return await original(query, *args, **kwargs)
                self.statements.append(query)
                token = inside.set(True)
                try:
                    return await original(query, *args, **kwargs)
                finally:
                    inside.reset(token)

            return counted

        for name in self.METHODS:
            setattr(conn, name, wrap(name))
        try:
            yield self
        finally:
            for name in self.METHODS:
                setattr(conn, name, originals[name])
