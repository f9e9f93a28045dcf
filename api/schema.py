"""The Schema: each domain's root fields merged into Query, Mutation and Subscription, with the
extensions (limits, caches, error codes).

A subscription field carries its ``SubscriptionSource`` (its domain's ``subscriptions`` module):
the websocket server finds what each field does by reading this schema.

The roots list their fields one by one, in the order of the published schema: a field belongs to
its domain's ``queries`` module, and where it sits in ``schema.graphql`` is decided here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api import nodes as nodes_q
from api.accounts import queries as accounts_q
from api.accounts.mutations import change_password, log_in, log_out, sign_up
from api.comments import queries as comments_q
from api.comments import subscriptions as comments_s
from api.comments.mutations import delete_comment, edit_comment, post_comment, report_comment
from api.core.execution import FastExecutionContext
from api.core.scalars import DECIMAL_SCALAR
from api.extensions import ErrorCodes, make_query_limits
from api.markets import queries as markets_q
from api.markets import subscriptions as markets_s
from api.markets.mutations import (
    buy_shares,
    cancel_market,
    create_market,
    resolve_market,
    sell_shares,
)
from api.news import queries as news_q
from api.news import subscriptions as news_s
from api.news.mutations import (
    archive_article,
    create_article,
    publish_article,
    unpublish_article,
    update_article,
    update_author_profile,
)
from api.search import queries as search_q
from api.site import queries as site_q
from settings import Settings


@strawberry.type(description="Every read entry point of the graph.")
class Query:
    node = nodes_q.node
    nodes = nodes_q.nodes
    article = news_q.article
    articles = news_q.articles
    author = news_q.author
    authors = news_q.authors
    tag = news_q.tag
    tags = news_q.tags
    category = news_q.category
    categories = news_q.categories
    market = markets_q.market
    markets = markets_q.markets
    me = accounts_q.me
    user = accounts_q.user
    reported_comments = comments_q.reported_comments
    quote = markets_q.quote
    leaderboard = markets_q.leaderboard
    search = search_q.search
    stats = site_q.stats


@strawberry.type(description="Every write of the graph.")
class Mutation:
    sign_up = sign_up.sign_up
    log_in = log_in.log_in
    log_out = log_out.log_out
    change_password = change_password.change_password
    post_comment = post_comment.post_comment
    edit_comment = edit_comment.edit_comment
    delete_comment = delete_comment.delete_comment
    buy_shares = buy_shares.buy_shares
    sell_shares = sell_shares.sell_shares
    create_market = create_market.create_market
    resolve_market = resolve_market.resolve_market
    cancel_market = cancel_market.cancel_market
    report_comment = report_comment.report_comment
    create_article = create_article.create_article
    update_article = update_article.update_article
    publish_article = publish_article.publish_article
    unpublish_article = unpublish_article.unpublish_article
    archive_article = archive_article.archive_article
    update_author_profile = update_author_profile.update_author_profile


@strawberry.type(description="Live updates over websockets (graphql-transport-ws at /graphql).")
class Subscription:
    comment_added = comments_s.comment_added
    odds_updated = markets_s.odds_updated
    comment_updated = comments_s.comment_updated
    article_published = news_s.article_published


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
    checks = make_query_limits(settings)
    extensions: list[Any] = [ErrorCodes, checks]
    schema = AgoraSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(nodes_q.NODE_TYPES),
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR}),
        # Plain queries run from a plan, the rest on graphql-core (api.core.execution).
        execution_context_class=FastExecutionContext if settings.fast_execution else None,
    )
    # The HTTP view checks documents before execution, through the same cache.
    schema.check_document = checks.check  # type: ignore[attr-defined]
    return schema
