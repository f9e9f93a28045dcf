"""The Schema with its extensions: limits, caches, error codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.extensions import ErrorCodes, make_query_limits
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import DECIMAL_SCALAR
from schema.subscription import Subscription
from schema.types import Article, Author, Category, Comment, Market, Outcome, Tag, Trade, User
from settings import Settings


class AgoraSchema(strawberry.Schema):
    """Strawberry's schema, minus its own error logging: ``format_error`` logs the unexpected."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(settings: Settings) -> AgoraSchema:
    """The executable schema for ``settings`` (limits are bound at build time)."""
    # DocumentChecks replaces strawberry's parser and validation caches and its validation step:
    # the cheap document limits must run before graphql-core's validation, and the parsed and
    # checked document are cached together, bounded in entries and in characters.
    extensions: list[Any] = [
        ErrorCodes,
        make_query_limits(settings),
    ]
    return AgoraSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Article, Author, Category, Comment, Market, Outcome, Tag, Trade, User],
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR}),
    )
