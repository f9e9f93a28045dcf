"""What the websocket server is lent, as small Protocols: realtime never imports the GraphQL
layer; the app builds these (``api.live``) and hands them to the hub.

Loaders and contexts are opaque here: the server makes a fresh set of loaders per event (or
replay page), hands them to the sources and to the context factory, and never looks inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode
from graphql.execution import Executor

from realtime.protocol.messages import ExecutionPayload


class Viewer(Protocol):
    """A logged-in user, as far as the server needs one: who, to revoke and to key groups."""

    @property
    def id(self) -> int: ...


class Session(Protocol):
    """A live session: its user, and when it expires (the socket closes then)."""

    @property
    def user(self) -> Any: ...

    @property
    def expires_at(self) -> datetime: ...


class FindSession(Protocol):
    """The live session of a bearer token, or None (unknown, expired or revoked)."""

    async def __call__(self, token: str) -> Session | None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends an operation over a socket."""

    viewer: Any
    token: str
    client_address: str
    # The websocket, as a request's context carries its HTTP request.
    request: Any


class ResolveQuery(Protocol):
    """The text an operation runs: its own, or the persisted document its ``extensions`` name;
    a GraphQLError (coded) when it may not run here (trusted documents, an unknown hash)."""

    async def __call__(self, query: str | None, extensions: dict[str, Any] | None) -> str: ...


async def as_sent(query: str | None, extensions: dict[str, Any] | None) -> str:
    """No persisted documents: the query as sent."""
    if query is None:
        raise GraphQLError(
            "Persisted queries are not enabled here.",
            extensions={"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
        )
    return query


class GraphQLLayer(Protocol):
    """The GraphQL layer's part: its schema, contexts, checks and errors."""

    @property
    def schema(self) -> GraphQLSchema:
        """The executable graphql-core schema (its subscription fields carry their sources)."""
        ...

    @property
    def executor_class(self) -> type[Executor]:
        """The execution context a subscription's events run on (the schema's: a planned,
        faster executor where the selection's shape allows, graphql-core's answer always)."""
        ...

    def loaders(self) -> Any:
        """A fresh set of loaders for one event or replay page (no object budget)."""
        ...

    def context(self, loaders: Any, viewer: Any, *, shared: bool) -> Any:
        """The context of a subscription's execution with ``loaders``: for ``viewer`` (None:
        anonymous), or, ``shared``, for many viewers at once, reading the viewer raising
        ``realtime.sharing.ViewerUnreachable``."""
        ...

    def document_errors(self, document: DocumentNode) -> list[GraphQLError]:
        """The checks of a whole document (cached by its text here)."""
        ...

    def request_error(
        self,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any],
        limits: dict[str | None, GraphQLError | None] | None = None,
    ) -> GraphQLError | None:
        """The first check of this request to fail: its variables, operation, limits."""
        ...

    def choose_operation(
        self, document: DocumentNode, operation_name: str | None
    ) -> OperationDefinitionNode | GraphQLError:
        """The operation a request runs, or why there is none."""
        ...

    def format_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """Errors as clients see them: coded, the unexpected masked (and logged)."""
        ...

    async def run_operation(
        self, query: str, variables: dict[str, Any], operation_name: str | None, caller: Caller
    ) -> ExecutionPayload:
        """Run a query or mutation sent over the socket, as HTTP runs it: its payload."""
        ...
