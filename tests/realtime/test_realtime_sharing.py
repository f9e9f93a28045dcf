"""Viewer dependence is declared, never listed: the hub decides from the schema which
subscriptions share one execution, shared executions can't read the viewer, and the fields
marked viewer-dependent are executed per viewer.

Everything runs in process against an app on the demo data, through the hub itself: sockets
are fakes that keep the frames the connections' writers send them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import strawberry
from asgi_lifespan import LifespanManager
from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_enum_type,
    is_leaf_type,
    is_non_null_type,
    parse,
    validate,
)

from api.context import SharedContext
from api.core.node import to_global_id
from api.schema import build_schema
from app import create_app
from db import models
from demo.specs import CENTRAL_ASIA_SLUG
from realtime.events import ARTICLES, comments_channel, odds_channel
from realtime.fanout import Connection, Hub, Sub
from realtime.operations import Operations
from realtime.sharing import ViewerUnreachable, depends_on_viewer, reads_viewer
from realtime.sources import SOURCE, Stream, SubscriptionSource, sources_of
from settings import Settings
from tests.conftest import GraphQLClient, forget_compiled_statements

TRANSPORT = "graphql-transport-ws"
# Every field the schema marks viewer-dependent, by type: the ones shared executions skip.
MARKED = {
    ("Comment", "reportCount"),
    ("Comment", "viewerCanEdit"),
    ("Comment", "viewerCanDelete"),
    ("Market", "viewerPosition"),
    ("User", "balance"),
}


class FakeSocket:
    """What a connection's writer sends to: the frames, decoded."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def send_text(self, frame: str) -> None:
        self.frames.append(json.loads(frame))
        self.arrived.set()


@dataclass
class Client:
    """A fake socket's connection, as the endpoint would have made it after connection_init."""

    conn: Connection
    socket: FakeSocket
    writer: asyncio.Task[None]

    async def frames(self, count: int, seconds: float = 10) -> list[dict[str, Any]]:
        """The first ``count`` frames sent to this client (waiting for them)."""
        async with asyncio.timeout(seconds):
            while len(self.socket.frames) < count:
                self.socket.arrived.clear()
                await self.socket.arrived.wait()
        return self.socket.frames[:count]


@dataclass
class Served:
    """An app on the demo data, its hub, the subscribe path, and an HTTP client of it."""

    hub: Hub
    operations: Operations
    http: httpx.AsyncClient
    clients: list[Client]

    async def client(self, username: str | None = None) -> Client:
        """A connection of ``username`` (None: anonymous) to the hub."""
        socket = FakeSocket()
        conn = Connection(socket, TRANSPORT, self.hub.settings)
        if username is not None:
            conn.viewer = await models.User.get(username=username)
        self.hub.connections.add(conn)
        client = Client(conn, socket, asyncio.create_task(conn.writer()))
        self.clients.append(client)
        return client

    async def subscribe(
        self, client: Client, query: str, variables: dict[str, Any], sub_id: str = "1"
    ) -> Sub:
        """Subscribe as a ``subscribe`` message does; the subscription, caught up."""
        await self.operations.subscribe(
            client.conn, sub_id, {"query": query, "variables": variables}
        )
        sub = client.conn.subs.get(sub_id)
        assert sub is not None, client.socket.frames
        if sub.task is not None:  # a sequenced one's catch-up: live from here on
            await asyncio.wait_for(sub.task, 10)
        assert not sub.replaying
        return sub


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Served]:
    """An app on ``settings``' database, started (its broker delivering to its hub)."""
    forget_compiled_statements()
    # Documents of every field are far over the query limits, which the hub's path doesn't
    # need to prove here (tests/realtime/test_realtime*.py do).
    app = create_app(
        replace(
            settings,
            max_query_depth=100,
            max_query_fields=1_000_000,
            max_query_nodes=100_000_000,
            max_query_tokens=1_000_000,
            ws_max_subscriptions=1000,
            comment_rate="1000/1",
        )
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        hub: Hub = app.state.hub
        served = Served(hub, Operations(hub), http, [])
        try:
            yield served
        finally:
            for client in served.clients:
                for sub in list(client.conn.subs.values()):
                    hub.remove(sub)
                client.writer.cancel()


def data_frames(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The payloads of ``next`` frames; any other frame fails the test."""
    for frame in frames:
        assert frame["type"] == "next", frame
    return [frame["payload"] for frame in frames]


# -- every field, shared ------------------------------------------------------------------------


def _sample(type_: Any) -> str:
    """A literal for a required argument of ``type_``."""
    named = get_named_type(type_)
    if is_enum_type(named):
        return next(iter(named.values))
    return {"Int": "1", "Float": "1.0", "Boolean": "false", "ID": '"x"'}.get(named.name, '"x"')


def every_field(
    schema: GraphQLSchema,
    type_: Any,
    depth: int,
    selected: set[tuple[str, str]],
    path: frozenset[str] = frozenset(),
) -> str:
    """A selection of every field of ``type_`` but the viewer-dependent ones, recursively: down
    ``depth`` levels, and a type already expanded on the way here is not again (below, just
    ``__typename``). Required arguments get sample values. ``selected`` collects the (type,
    field) pairs selected."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    if depth == 0 or named.name in path:
        return "{ __typename }"
    if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
        parts = [
            f"... on {possible.name} {every_field(schema, possible, depth, selected, path)}"
            for possible in schema.get_possible_types(named)
        ]
        return "{ __typename " + " ".join(parts) + " }"
    assert isinstance(named, GraphQLObjectType)
    parts = []
    for name, field in named.fields.items():
        if depends_on_viewer(field):
            continue
        selected.add((named.name, name))
        required = [
            f"{arg_name}: {_sample(arg.type)}"
            for arg_name, arg in field.args.items()
            if is_non_null_type(arg.type) and arg.default_value is Undefined
        ]
        arguments = f"({', '.join(required)})" if required else ""
        below = every_field(schema, field.type, depth - 1, selected, path | {named.name})
        parts.append(f"{name}{arguments} {below}")
    return "{ " + " ".join(parts) + " }"


def reachable(schema: GraphQLSchema, type_: Any) -> set[tuple[str, str]]:
    """Every (type, field) reachable from ``type_``, viewer-dependent ones included."""
    found: set[tuple[str, str]] = set()
    todo, seen = [get_named_type(type_)], set()
    while todo:
        named = todo.pop()
        if named.name in seen or is_leaf_type(named):
            continue
        seen.add(named.name)
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            todo.extend(schema.get_possible_types(named))
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for name, field in named.fields.items():
                found.add((named.name, name))
                todo.append(get_named_type(field.type))
    return found


def marked_fields(schema: GraphQLSchema) -> set[tuple[str, str]]:
    """Every (type, field) the schema declares viewer-dependent."""
    return {
        (type_.name, name)
        for type_ in schema.type_map.values()
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType)
        for name, field in type_.fields.items()
        if depends_on_viewer(field)
    }


# Deep enough that every reachable field is selected somewhere (asserted), shallow enough that
# a few events execute in a second or two.
DEPTH = 6


async def _demo_objects() -> dict[str, Any]:
    """The showcase article, a reply on it (so parent and replies resolve), a market of it with
    a trade."""
    article = await models.Article.get(slug=CENTRAL_ASIA_SLUG)
    reply = (
        await models.Comment.filter(
            article_id=article.id, parent_id__not_isnull=True, deleted=False
        )
        .order_by("sequence")
        .first()
    )
    assert reply is not None
    parent = await models.Comment.get(id=reply.parent_id)
    link = await models.MarketArticle.filter(article_id=article.id).first()
    assert link is not None
    market = await models.Market.get(id=link.market_id)
    trade = await models.Trade.filter(market_id=market.id).first()
    assert trade is not None
    return {"article": article, "reply": reply, "parent": parent, "market": market, "trade": trade}


async def test_every_field_reachable_from_a_subscription_runs_shared_without_the_viewer(
    demo_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Each subscription selecting every field its type reaches (but the marked ones), shared,
    for a logged-in subscriber: every event renders without an error, so no unmarked field
    reads the viewer (a shared execution can't)."""
    async with serving(demo_settings) as served:
        schema = served.hub.graphql.schema
        objects = await _demo_objects()
        article, market = objects["article"], objects["market"]
        article_id, market_id = (
            to_global_id("Article", article.id),
            to_global_id("Market", market.id),
        )
        head = article.comment_seq
        comments = [objects["reply"], objects["parent"]]
        # Each subscription field: its root arguments, and the events that reach its subscribers.
        cases = {
            "commentAdded": (
                f'articleId: "{article_id}"',
                comments_channel(article.id),
                [
                    {"kind": "added", "comment_id": c.id, "seq": head + n}
                    for n, c in enumerate(comments, 1)
                ],
            ),
            "commentUpdated": (
                f'articleId: "{article_id}"',
                comments_channel(article.id),
                [{"kind": "edited", "comment_id": c.id, "seq": c.sequence} for c in comments],
            ),
            "oddsUpdated": (
                f'marketId: "{market_id}"',
                odds_channel(market.id),
                [{"seq": market.odds_seq + 1, "trade_id": objects["trade"].id}],
            ),
            "articlePublished": (
                'categorySlug: "politics"',
                ARTICLES,
                [{"kind": "live", "article_id": article.id}],
            ),
        }
        assert schema.subscription_type is not None
        assert set(schema.subscription_type.fields) == set(cases), "a subscription to cover"
        for field_name, (arguments, channel, events) in cases.items():
            field = schema.subscription_type.fields[field_name]
            selected: set[tuple[str, str]] = set()
            query = (
                f"subscription {{ {field_name}({arguments}) "
                f"{every_field(schema, field.type, DEPTH, selected)} }}"
            )
            document = parse(query, no_location=True)
            assert validate(schema, document) == []
            assert not reads_viewer(schema, document)
            # Every field the type reaches is in the document, but the marked ones.
            every = reachable(schema, field.type)
            assert every - selected == {f for f in every if f in marked_fields(schema)}
            # A logged-in subscriber: the shared execution must not see Alice all the same.
            alice = await served.client("alice")
            sub = await served.subscribe(alice, query, {})
            assert sub.group.viewer is None and not sub.group.reads_viewer  # shared
            snapshot = sub.group.delivery == "coalesced"  # oddsUpdated: the odds at once
            if snapshot:
                await alice.frames(1)
            for event in events:
                await served.hub.on_event(channel, event)
            payloads = data_frames(await alice.frames(len(events) + snapshot))
            for payload in payloads:
                assert "errors" not in payload, json.dumps(payload["errors"][:3], indent=1)
                assert payload["data"][field_name] is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- an unmarked viewer-reading field fails loudly ---------------------------------------------


async def test_an_unmarked_field_reading_the_viewer_fails_loudly_when_shared(
    demo_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """``Comment.body`` made to read the viewer (as a new field might, unmarked): the shared
    execution can't reach it, so the payload has a masked error instead of anyone's value, and
    the log names the field."""
    async with serving(demo_settings) as served:
        body = served.hub.graphql.schema.get_type("Comment").fields["body"]  # type: ignore[union-attr]
        with pytest.MonkeyPatch.context() as patch:

            def reads_the_viewer(comment: Any, info: Any) -> str:
                return f"{comment.body} for {info.context.viewer.username}"

            patch.setattr(body, "resolve", reads_the_viewer)
            objects = await _demo_objects()
            article = objects["article"]
            alice = await served.client("alice")
            sub = await served.subscribe(
                alice,
                "subscription($a: ID!) { commentAdded(articleId: $a) { sequence body } }",
                {"a": to_global_id("Article", article.id)},
            )
            assert not sub.group.reads_viewer
            event = {"kind": "added", "comment_id": objects["reply"].id, "seq": sub.last_seq + 1}
            await served.hub.on_event(comments_channel(article.id), event)
            [payload] = data_frames(await alice.frames(1))
    assert payload["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in payload["errors"]] == [
        (["commentAdded", "body"], "INTERNAL_SERVER_ERROR")
    ]
    assert "alice" not in json.dumps(payload)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        "commentAdded.body read the viewer in an execution shared between viewers" in m
        for m in logged
    ), logged


def test_a_shared_context_has_no_viewer() -> None:
    context = SharedContext(settings=Settings(), services=None)  # type: ignore[arg-type]
    with pytest.raises(ViewerUnreachable):
        _ = context.viewer
    assert "viewer=<unreachable>" in repr(context)  # a repr doesn't raise
    with pytest.raises(ValueError, match="no viewer"):
        SharedContext(settings=Settings(), services=None, viewer=object())  # type: ignore[arg-type]


# -- marked fields are per viewer ----------------------------------------------------------------

ADDED_FOR_VIEWER = (
    "subscription($a: ID!) { commentAdded(articleId: $a) "
    "{ sequence viewerCanEdit viewerCanDelete author { username } } }"
)
ODDS_FOR_VIEWER = (
    "subscription($m: ID!) { oddsUpdated(marketId: $m) "
    "{ seq market { viewerPosition { shares } } } }"
)
POST = (
    "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) "
    "{ comment { sequence } errors { code } } }"
)
BUY = (
    'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "5.00"}) '
    "{ trade { shares } errors { code } } }"
)


async def test_marked_fields_make_the_subscription_per_viewer(fresh_settings: Settings) -> None:
    """Alice, Bob, the admin and an anonymous reader on the same document: one group each,
    executed with their own viewer, so each gets their own viewerCanEdit, viewerCanDelete and
    viewerPosition."""
    from tests.conftest import seed_demo

    await seed_demo(fresh_settings)
    async with serving(fresh_settings) as served:
        objects = await _demo_objects()
        article, market = objects["article"], objects["market"]
        variables = {"a": to_global_id("Article", article.id)}
        odds_variables = {"m": to_global_id("Market", market.id)}
        clients = {name: await served.client(name) for name in ("alice", "bob", "admin", None)}
        for client in clients.values():
            sub = await served.subscribe(client, ADDED_FOR_VIEWER, variables, "c")
            assert sub.group.reads_viewer
            assert sub.group.viewer is client.conn.viewer
            await served.subscribe(client, ODDS_FOR_VIEWER, odds_variables, "o")
            await client.frames(1)  # the odds at once, before anything changes them
        groups = {client.conn.subs["c"].group for client in clients.values()}
        assert len(groups) == 4
        alice = await GraphQLClient(served.http).log_in("alice")
        posted = await alice.data(POST, {"a": variables["a"], "b": "mine to edit"})
        assert posted["postComment"]["errors"] == []
        outcome = await models.Outcome.filter(market_id=market.id).first()
        assert outcome is not None
        bought = await alice.data(BUY, {"o": to_global_id("Outcome", outcome.id)})
        assert bought["buyShares"]["errors"] == []
        seen: dict[str | None, tuple[Any, ...]] = {}
        for name, client in clients.items():
            frames = await client.frames(3)  # the odds snapshot, the comment, the odds update
            by_id: dict[str, list[dict[str, Any]]] = {}
            for frame in frames:
                by_id.setdefault(frame["id"], []).append(frame)
            [comment] = [p["data"]["commentAdded"] for p in data_frames(by_id["c"])]
            *_, odds = [p["data"]["oddsUpdated"] for p in data_frames(by_id["o"])]
            assert comment["author"] == {"username": "alice"}
            viewer = client.conn.viewer
            held = 0
            if viewer is not None:  # positions the viewer holds in the market, from the database
                held = await models.Position.filter(
                    user_id=viewer.id, market_id=market.id, shares_units__gt=0
                ).count()
            assert len(odds["market"]["viewerPosition"]) == held, name
            seen[name] = (comment["viewerCanEdit"], comment["viewerCanDelete"], held > 0)
    assert seen["alice"] == (True, True, True)  # her comment, her fresh position
    assert seen["bob"][:2] == (False, False)
    assert seen["admin"][:2] == (False, True)  # a moderator may delete anyone's
    assert seen[None] == (False, False, False)


# -- the rule itself -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> Iterator[GraphQLSchema]:
    yield build_schema(Settings())._schema


@pytest.mark.parametrize(
    ("document", "depends"),
    [
        ("subscription { commentAdded(articleId: 1) { sequence body } }", False),
        ("subscription { commentAdded(articleId: 1) { viewerCanEdit } }", True),
        ("subscription { commentAdded(articleId: 1) { author { balance } } }", True),
        (
            "subscription { commentAdded(articleId: 1) { ...F } } fragment F on Comment { reportCount }",
            True,
        ),
        (
            "subscription { oddsUpdated(marketId: 1) { market { ... on Market { viewerPosition { shares } } } } }",
            True,
        ),
        (
            "subscription { oddsUpdated(marketId: 1) { market { question } lastTrade { user { username } } } }",
            False,
        ),
        # A field named like a marked one, on a type where it isn't: the schema decides.
        ("subscription { oddsUpdated(marketId: 1) { lastTrade { shares amount } } }", False),
    ],
)
def test_viewer_dependence_is_read_from_the_schema(
    schema: GraphQLSchema, document: str, depends: bool
) -> None:
    assert reads_viewer(schema, parse(document)) is depends


def test_the_marked_fields_are_declared_where_they_are_defined(schema: GraphQLSchema) -> None:
    assert marked_fields(schema) == MARKED


def test_every_subscription_field_declares_its_source(schema: GraphQLSchema) -> None:
    sources = sources_of(schema)
    assert set(sources) == {"commentAdded", "oddsUpdated", "commentUpdated", "articlePublished"}
    assert {name: s.delivery for name, s in sources.items()} == {
        "commentAdded": "ordered",
        "oddsUpdated": "coalesced",
        "commentUpdated": "ordered",
        "articlePublished": "ordered",
    }
    assert [name for name, s in sources.items() if s.sequenced] == ["commentAdded"]

    @strawberry.type
    class Query:
        ok: bool = True

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def undeclared(self) -> AsyncGenerator[bool, None]:  # pragma: no cover
            yield True

    undeclared = strawberry.Schema(query=Query, subscription=Subscription)._schema
    with pytest.raises(TypeError, match=r"Subscription\.undeclared declares no SubscriptionSource"):
        sources_of(undeclared)


class _Nothing(SubscriptionSource[int]):
    async def open(self, arguments: Any) -> Stream[int]:  # pragma: no cover
        return Stream("nowhere", 0)


def test_a_field_carries_its_source_in_its_metadata() -> None:
    source = _Nothing()

    @strawberry.type
    class Query:
        ok: bool = True

    @strawberry.type
    class Subscription:
        @strawberry.subscription(metadata={SOURCE: source})
        async def declared(self) -> AsyncGenerator[bool, None]:  # pragma: no cover
            yield True

    schema = strawberry.Schema(query=Query, subscription=Subscription)._schema
    assert sources_of(schema) == {"declared": source}
