"""Every string argument of the schema, fed arbitrary Unicode: never an INTERNAL_SERVER_ERROR.

The arguments come from the schema itself, so a field added later is covered without an edit
here: every argument of every Query and Mutation field whose type reads a string (String, ID and
the custom scalars parsed from strings: DateTime, Decimal), inside input objects recursively and
inside lists, and the same for the fields of every Node type, reached with ``node(id:)``
(connections' ``after``/``before`` cursors among them). Each value goes in twice: as a variable
(a JSON body written with ``ensure_ascii=True``, so lone surrogates travel as ``\\ud800``
escapes) and inline, as a GraphQL string literal (``\\uXXXX`` escapes, braced ``\\u{…}`` ones,
or the raw characters). The other arguments get valid values from the demo data, so the string
reaches the resolver and the database rather than stopping at the first missing argument.

Whatever the value, the answer is JSON with HTTP 200 (413 ``PAYLOAD_TOO_LARGE`` when the body
is over the limit, 400 only for a document refused as such), and every error has an
``extensions.code`` other than ``INTERNAL_SERVER_ERROR``. A failure names the argument, the form
and the exception the server logged.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)
from graphql.pyutils import Undefined
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.ratelimit import MemoryRateLimiter
from api.schema import build_schema
from app import create_app
from settings import Settings
from tests.conftest import (
    SIGN_UP,
    FakeClock,
    forget_compiled_statements,
    new_database,
    prepare_database,
)

# -- the arguments, from the schema ---------------------------------------------------------

SCHEMA: GraphQLSchema = build_schema(Settings(env="test"))._schema

# Scalars that can't hold arbitrary text: every other one is read from a string.
NOT_STRINGS = {"Int", "Float", "Boolean"}
LIST = "[]"  # a path step into a list's element


@dataclass(frozen=True)
class Target:
    """One string-typed position: ``owner.field(path)``; ``type`` is the position's type."""

    operation: str  # "query" or "mutation"
    owner: str  # "Query", "Mutation", or the Node type reached through node(id:)
    field: str
    path: tuple[str, ...]  # the argument, then input fields, LIST for a list element
    type: str

    def __str__(self) -> str:
        return f"{self.owner}.{self.field}({'.'.join(self.path)})"

    @property
    def is_cursor(self) -> bool:
        return self.path in (("after",), ("before",))


def _positions(
    type_: Any, path: tuple[str, ...], seen: frozenset[str]
) -> Iterator[tuple[tuple[str, ...], str]]:
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList):
        yield from _positions(inner.of_type, (*path, LIST), seen)
    elif isinstance(inner, GraphQLScalarType):
        if inner.name not in NOT_STRINGS:
            yield path, str(type_)
    elif isinstance(inner, GraphQLInputObjectType) and inner.name not in seen:
        for name, input_field in inner.fields.items():
            yield from _positions(input_field.type, (*path, name), seen | {inner.name})


def _field_targets(operation: str, owner: GraphQLObjectType) -> Iterator[Target]:
    for field_name, field_def in owner.fields.items():
        for arg_name, arg in field_def.args.items():
            for path, type_ in _positions(arg.type, (arg_name,), frozenset()):
                yield Target(operation, owner.name, field_name, path, type_)


def _node_types(schema: GraphQLSchema) -> list[GraphQLObjectType]:
    node = schema.get_type("Node")
    return [
        t
        for t in schema.type_map.values()
        if isinstance(t, GraphQLObjectType) and node is not None and node in t.interfaces
    ]


def enumerate_targets(schema: GraphQLSchema) -> list[Target]:
    """Every string position of the root fields' arguments, and of the Node types' fields'."""
    assert schema.query_type is not None and schema.mutation_type is not None
    targets = [
        *_field_targets("query", schema.query_type),
        *_field_targets("mutation", schema.mutation_type),
    ]
    for type_ in sorted(_node_types(schema), key=lambda t: t.name):
        targets.extend(_field_targets("query", type_))
    # Subscriptions aren't served over HTTP; the websocket tests own their arguments.
    return targets


def unreachable_types(schema: GraphQLSchema) -> list[str]:
    """Object types with string arguments this file can't reach (neither root nor Node)."""
    roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
    nodes = set(_node_types(schema))
    return sorted(
        t.name
        for t in schema.type_map.values()
        if isinstance(t, GraphQLObjectType)
        and not t.name.startswith("__")
        and t not in roots
        and t not in nodes
        and any(True for _ in _field_targets("query", t))
    )


TARGETS = enumerate_targets(SCHEMA)


# -- GraphQL literals -------------------------------------------------------------------------


class EnumValue(str):
    """An enum value: printed bare."""


HOLE = object()  # where the value under test goes
MISSING = object()


def quote(text: str, style: str) -> str:
    """``text`` as a GraphQL string literal: ``fixed`` (\\uXXXX, surrogate pairs for the astral
    planes), ``braced`` (\\u{X}) or ``raw`` (only ``"`` and ``\\`` escaped)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif style == "raw" or 0x20 <= code < 0x7F:
            out.append(char)
        elif style == "braced":
            out.append(f"\\u{{{code:x}}}")
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def literal(value: Any, hole: str) -> str:
    """A Python value as a GraphQL value literal; HOLE becomes ``hole``."""
    if value is HOLE:
        return hole
    if isinstance(value, EnumValue):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value, "fixed")
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, hole) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v, hole)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {value!r}")


def arguments(args: dict[str, Any], hole: str) -> str:
    if not args:
        return ""
    return "(" + ", ".join(f"{k}: {literal(v, hole)}" for k, v in args.items()) + ")"


def selection(type_: Any) -> str:
    """A small selection that still runs the field: errors, a page's nodes and cursors."""
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        return ""
    parts = ["__typename"]
    fields = named.fields
    if "errors" in fields:
        parts.append("errors { code }")
    if "nodes" in fields:
        parts.append("nodes { __typename }")
    if "pageInfo" in fields:
        parts.append("pageInfo { hasNextPage endCursor }")
    if "totalCount" in fields:
        parts.append("totalCount")
    return " { " + " ".join(parts) + " }"


def _required(type_: Any, default: Any) -> bool:
    return isinstance(type_, GraphQLNonNull) and default is Undefined


# -- the app ----------------------------------------------------------------------------------

# argon2's defaults cost ~0.2 s a hash: the password fields would take most of the run.
_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
FRESH_PASSWORD = "a-good-password"
FUTURE = "2030-01-01T00:00:00+00:00"
LONG = 1000  # inline literals longer than this are lexed once per app, not once per argument


class _Records(logging.Handler):
    """The error records logged while a request ran (the masked errors' tracebacks)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> list[str]:
        out = []
        for record in self.records:
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                out.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            else:
                out.append(f"{record.name}: {record.getMessage()[:200]}")
        return out


def short(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}…{text[-10:]} (len {len(value)})"


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


@dataclass
class World:
    """One app on its own demo database, the accounts that write, and ids to fill arguments."""

    http: httpx.AsyncClient
    backend: str
    settings: Settings
    clock: FakeClock
    records: _Records
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    slugs: dict[str, str] = field(default_factory=dict)
    fillers: dict[str, Any] = field(default_factory=dict)
    lexed: set[tuple[str, int, int]] = field(default_factory=set)
    counter: Iterator[int] = field(default_factory=itertools.count)

    # -- requests --------------------------------------------------------------------------

    async def raw(
        self, query: str, variables: dict[str, Any] | None, token: str | None, get: bool = False
    ) -> tuple[bytes, httpx.Response]:
        """POST the JSON body (or GET with the query string); (the body, the response)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Every request finds the rate limits refilled: a refusal would stop the string early.
        self.clock.advance(10**7)
        if get:
            # What a careless client sends: the variables as UTF-8, lone surrogates and all
            # (%ED%A0%80, which no UTF-8 decoder accepts).
            params = {"query": query, "variables": json.dumps(variables, ensure_ascii=False)}
            encoded = {k: v.encode("utf-8", "surrogatepass") for k, v in params.items()}
            return b"", await self.http.get(f"/graphql?{urlencode(encoded)}", headers=headers)
        body = json.dumps({"query": query, "variables": variables or {}}, ensure_ascii=True)
        headers["Content-Type"] = "application/json"
        content = body.encode("ascii")
        return content, await self.http.post("/graphql", content=content, headers=headers)

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        _, response = await self.raw(query, variables, token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def log_in(self, username: str, password: str = "demo-password") -> str:
        data = await self.data(
            "mutation($u: String!, $p: String!) { logIn(input: {username: $u, password: $p}) "
            "{ token errors { code } } }",
            {"u": username, "p": password},
        )
        assert data["logIn"]["errors"] == [], data
        token: str = data["logIn"]["token"]
        return token

    async def sign_up(self) -> str:
        username = f"fuzz_{next(self.counter)}"
        data = await self.data(
            SIGN_UP,
            {"input": {"username": username, "password": FRESH_PASSWORD, "displayName": "Fuzz"}},
        )
        assert data["signUp"]["errors"] == [], data
        token: str = data["signUp"]["token"]
        return token

    # -- the demo data -----------------------------------------------------------------------

    async def setup(self) -> None:
        self.tokens["admin"] = await self.log_in("admin")
        self.tokens["alice"] = await self.log_in("alice")
        admin, alice = self.tokens["admin"], self.tokens["alice"]
        data = await self.data(
            """{
              me { id }
              articles(first: 50) { nodes { id slug author { id slug } category { id slug }
                tags { id slug } comments(first: 20) { nodes { id replyCount } }
                markets { id slug status outcomes { id } tags { id slug } } } }
              authors(first: 1) { nodes { id slug } }
            }""",
            token=admin,
        )
        articles = data["articles"]["nodes"]

        def score(article: dict[str, Any]) -> tuple[bool, bool]:
            open_markets = [m for m in article["markets"] if m["status"] == "OPEN"]
            replies = any(c["replyCount"] > 0 for c in article["comments"]["nodes"])
            return bool(open_markets), replies

        article = max(articles, key=score)
        market = next(m for m in article["markets"] if m["status"] == "OPEN")
        comment = max(article["comments"]["nodes"], key=lambda c: c["replyCount"])
        tag = (market["tags"] or article["tags"])[0]
        outcome = market["outcomes"][0]["id"]
        self.ids.update(
            Article=article["id"],
            Author=article["author"]["id"],
            Category=article["category"]["id"],
            Tag=tag["id"],
            Comment=comment["id"],
            Market=market["id"],
            Outcome=outcome,
            User=data["me"]["id"],
        )
        self.slugs.update(
            article=article["slug"],
            author=article["author"]["slug"],
            category=article["category"]["slug"],
            tag=tag["slug"],
            market=market["slug"],
        )
        # Data behind every connection a cursor pages: trades and positions of the viewer
        # (admin) and of alice, her own comment to edit, a report in the moderation queue.
        buy = """mutation($o: ID!, $a: Decimal!) { buyShares(input: {outcomeId: $o, amount: $a})
                   { trade { id } errors { code } } }"""
        for token in (alice, admin):
            bought = await self.data(buy, {"o": outcome, "a": "10.00"}, token)
            assert bought["buyShares"]["errors"] == [], bought
        self.ids["Trade"] = bought["buyShares"]["trade"]["id"]
        post = """mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b})
                    { comment { id } errors { code } } }"""
        comments = []
        for token in (alice, admin, admin):
            posted = await self.data(post, {"a": article["id"], "b": "From the fuzz test."}, token)
            assert posted["postComment"]["errors"] == [], posted
            comments.append(posted["postComment"]["comment"]["id"])
        own, reported, to_report = comments
        reported_ok = await self.data(
            """mutation($c: ID!) { reportComment(input: {commentId: $c, reason: "Spam."})
                 { errors { code } } }""",
            {"c": reported},
            alice,
        )
        assert reported_ok["reportComment"]["errors"] == [], reported_ok

        self.fillers = {
            "Query.node.id": article["id"],
            "Query.nodes.ids": [article["id"]],
            "QuoteInput.amount": "1.00",
            "SignUpInput.username": lambda: f"fuzz_{next(self.counter)}",
            "SignUpInput.password": FRESH_PASSWORD,
            "SignUpInput.displayName": "Fuzz Tester",
            "LogInInput.username": "alice",
            "LogInInput.password": "demo-password",
            "ChangePasswordInput.currentPassword": FRESH_PASSWORD,
            "ChangePasswordInput.newPassword": "another-good-password",
            "PostCommentInput.body": "A comment from the fuzz test.",
            "EditCommentInput.commentId": own,
            "EditCommentInput.body": "An edited comment.",
            "BuySharesInput.amount": "1.00",
            "SellSharesInput.shares": "0.0001",
            "CreateMarketInput.question": lambda: (
                f"Will the fuzz test's market number {next(self.counter)} be created?"
            ),
            "CreateMarketInput.description": "Made by the string-input test.",
            "CreateMarketInput.resolutionCriteria": "Resolves Yes if it exists.",
            "CreateMarketInput.outcomes": ["Yes", "No"],
            "CreateMarketInput.closesAt": FUTURE,
            "CreateMarketInput.liquidity": "10.00",
            "CreateMarketInput.articleIds": [article["id"]],
            "CreateMarketInput.tagSlugs": [tag["slug"]],
            "ReportCommentInput.commentId": to_report,
            "ReportCommentInput.reason": "Off topic.",
        }

    # -- filling the other arguments -----------------------------------------------------------

    def filler(self, key: str, name: str, hint: str) -> Any:
        """A valid value for argument or input field ``name`` (``key`` = Owner.field[.arg])."""
        value = self.fillers.get(key, MISSING)
        if value is MISSING:
            if name == "slug" and hint in self.slugs:
                value = self.slugs[hint]
            elif name.endswith(("Id", "Ids")):
                type_name = name.removesuffix("s").removesuffix("Id")
                gid = self.ids.get(type_name[:1].upper() + type_name[1:])
                if gid is not None:
                    value = [gid] if name.endswith("Ids") else gid
            elif name.endswith(("Slug", "Slugs")):
                slug = self.slugs.get(name.removesuffix("s").removesuffix("Slug"))
                if slug is not None:
                    value = [slug] if name.endswith("Slugs") else slug
        return value() if callable(value) else value

    def default(self, type_: Any) -> Any:
        """Some valid-looking value of ``type_`` for a required argument nobody named."""
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            return []
        if isinstance(type_, GraphQLEnumType):
            return EnumValue(next(iter(type_.values)))
        if isinstance(type_, GraphQLInputObjectType):
            return self.fill_input(type_, None)
        return {
            "Int": 1,
            "Float": 1.0,
            "Boolean": False,
            "Decimal": "1.00",
            "DateTime": FUTURE,
        }.get(type_.name, "placeholder")

    def place(self, type_: Any, rest: tuple[str, ...], current: Any) -> Any:
        """``current`` (a valid value, or MISSING) with HOLE at ``rest``."""
        if not rest:
            return HOLE
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if rest[0] == LIST:
            base = list(current) if isinstance(current, list) else []
            first = base[0] if base else MISSING
            return [self.place(inner.of_type, rest[1:], first), *base[1:]]
        return self.fill_input(inner, rest)

    def fill_input(
        self, type_: GraphQLInputObjectType, rest: tuple[str, ...] | None
    ) -> dict[str, Any]:
        """Valid values for ``type_``'s fields (the required and the named ones), HOLE at ``rest``."""
        out: dict[str, Any] = {}
        for name, input_field in type_.fields.items():
            value = self.filler(f"{type_.name}.{name}", name, name)
            if rest and rest[0] == name:
                out[name] = self.place(input_field.type, rest[1:], value)
                continue
            if value is MISSING and _required(input_field.type, input_field.default_value):
                value = self.default(input_field.type)
            if value is not MISSING:
                out[name] = value
        return out

    def field_args(
        self, owner: str, field_name: str, field_def: Any, target: Target | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, arg in field_def.args.items():
            value = self.filler(f"{owner}.{field_name}.{name}", name, field_name)
            if target is not None and target.path[0] == name:
                out[name] = self.place(arg.type, target.path[1:], value)
                continue
            if value is MISSING and _required(arg.type, arg.default_value):
                value = self.default(arg.type)
            if value is not MISSING:
                out[name] = value
        return out

    # -- the documents -------------------------------------------------------------------------

    def document(self, target: Target, hole: str, declare: str, extra: dict[str, Any]) -> str:
        """The operation that passes ``hole`` at the target; ``extra`` adds arguments."""
        owner = SCHEMA.get_type(target.owner)
        assert isinstance(owner, GraphQLObjectType)
        field_def = owner.fields[target.field]
        args = {**self.field_args(target.owner, target.field, field_def, target), **extra}
        body = f"{target.field}{arguments(args, hole)}{selection(field_def.type)}"
        if target.owner not in ("Query", "Mutation"):
            gid = self.ids.get(target.owner)
            assert gid is not None, f"no {target.owner} in the demo data to reach {target}"
            body = f"node(id: {quote(gid, 'fixed')}) {{ ... on {target.owner} {{ {body} }} }}"
        return f"{target.operation} Fuzz{declare} {{ {body} }}"

    async def viewer(self, target: Target) -> str | None:
        if target.operation == "query":
            return self.tokens["admin"]
        if target.field in ("signUp", "logIn"):
            return None
        if target.field == "changePassword":
            return await self.sign_up()  # it changes the password: a fresh account each time
        if target.field in ("createMarket", "resolveMarket", "cancelMarket"):
            return self.tokens["admin"]
        return self.tokens["alice"]

    # -- probing -------------------------------------------------------------------------------

    async def probe(self, target: Target, value: str, styles: tuple[str, ...] = ()) -> list[str]:
        """Send ``value`` to ``target`` as a variable, then inline in each of ``styles``."""
        problems: list[str] = []
        for form in ("variables", *styles):
            if form == "get" and (target.operation != "query" or len(value) > LONG):
                continue  # GET serves queries only; URLs stop at 64 KiB (httpx's limit, h11's)
            if form in ("variables", "get"):
                query = self.document(target, "$v", f"($v: {target.type})", {})
                variables: dict[str, Any] | None = {"v": value}
            else:
                query = self.document(target, quote(value, form), "", {})
                variables = None
            if form != "variables":
                # Lexing a long literal is the same work whatever the argument: once per app.
                key = (form, len(value), hash(value))
                if len(value) > LONG and key in self.lexed:
                    continue
                self.lexed.add(key)
            where = f"{target} [{self.backend} {form}] {short(value)}"
            token = await self.viewer(target)
            problems.extend(await self.check(where, query, variables, token, form == "get"))
        return problems

    async def check(
        self,
        where: str,
        query: str,
        variables: dict[str, Any] | None,
        token: str | None,
        get: bool = False,
    ) -> list[str]:
        """The problems with the answer to one request (none: a JSON answer, coded errors)."""
        self.records.records.clear()
        try:
            content, response = await self.raw(query, variables, token, get)
        except Exception as exc:  # the app raised through the ASGI transport: a 500
            return [f"{where}: the app raised {type(exc).__name__}: {str(exc)[:200]}"]
        logged = self.records.describe()
        problems = []
        too_large = len(content) > self.settings.max_body_bytes
        expected = {413} if too_large else {200, 400}
        if response.status_code not in expected:
            problems.append(f"HTTP {response.status_code}: {response.text[:200]!r}")
        try:
            body = response.json()
        except ValueError:
            return [f"{where}: not JSON: {response.text[:200]!r}; logged {logged}"]
        if not isinstance(body, dict):
            return [f"{where}: not a JSON object: {body!r:.200}"]
        errors = body.get("errors") or []
        codes = [(e.get("extensions") or {}).get("code") for e in errors]
        if too_large and codes != ["PAYLOAD_TOO_LARGE"]:
            problems.append(f"over the body limit, codes {codes}")
        if response.status_code == 400 and not codes:
            problems.append("HTTP 400 without a coded error")
        if "INTERNAL_SERVER_ERROR" in codes:
            problems.append(f"INTERNAL_SERVER_ERROR, logged {logged}")
        if None in codes:
            uncoded = [e.get("message", "")[:120] for e in errors if not e.get("extensions")]
            problems.append(f"errors without extensions.code: {uncoded}")
        if "data" not in body and not errors:
            problems.append(f"neither data nor errors: {body!r:.200}")
        return [f"{where}: {p}" for p in problems]


@pytest.fixture(scope="module")
async def world(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """One app for every argument of a backend: its own demo database (the mutations write),
    cheap password hashes, rate limits on a clock the requests move past every window."""
    records = _Records()
    root = logging.getLogger()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("accounts.passwords._hasher", _cheap_hasher, raising=False)
        _forget_dummy_hash()
        url = await new_database(request, backend, tmp_path_factory.mktemp(f"strings-{backend}"))
        settings = await prepare_database(url, demo=True)
        clock = FakeClock()
        forget_compiled_statements()
        app = create_app(settings, limiter=MemoryRateLimiter(clock=clock))
        root.addHandler(records)
        try:
            async with (
                LifespanManager(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                ) as http,
            ):
                world = World(
                    http=http, backend=backend, settings=settings, clock=clock, records=records
                )
                await world.setup()
                yield world
        finally:
            root.removeHandler(records)
            _forget_dummy_hash()


def _forget_dummy_hash() -> None:
    # The hash log-ins to unknown accounts verify against is made once: not with our cheap
    # hasher for the rest of the suite.
    import accounts.passwords
    import accounts.service

    for module in (accounts.passwords, accounts.service):
        made = getattr(module, "_dummy_hash", None)
        if made is not None and hasattr(made, "cache_clear"):
            made.cache_clear()


# -- the values ---------------------------------------------------------------------------------

SPECIAL = [
    "\x00", "\x01", "\x1f", "\x7f", "\x85", "\u00a0", "\u2028", "\u202e", "\u200b", "\ufeff",
    "\ufffd", "\uffff", "\U0010ffff", "\U0001f642", "\ud800", "\udbff", "\udc00", "\udfff",
    "\\", '"', "'", "\n", "\r", "\t", "%", "_", "$", "{", "[",
]  # fmt: skip
CHARS = st.one_of(
    st.characters(codec=None),  # every code point, lone surrogates (Cs) included
    st.characters(categories=["Cs", "Cc", "Cf", "Co", "Cn"]),
    st.sampled_from(SPECIAL),
)
PLAUSIBLE = ["alice", "politics", "QXJ0aWNsZTox", "T3V0Y29tZTox", "WyJORVdFU1Qi", "1.00", FUTURE]
TEXT = st.one_of(
    st.text(CHARS, max_size=40),
    st.builds(lambda s, n: s * n, st.text(CHARS, min_size=1, max_size=3), st.integers(50, 400)),
    st.builds(lambda a, b: a + b, st.sampled_from(PLAUSIBLE), st.text(CHARS, max_size=8)),
)
STYLES = ("fixed", "braced", "raw")

# Every value goes as a variable, then inline in the listed styles: NUL and the lone
# surrogates in each escape style (the NUL check reads the query text; `\u{0}` is a NUL too).
VALUES: list[tuple[str, tuple[str, ...]]] = [
    ("", ("fixed",)),
    ("\x00", STYLES),
    ("a\x00b", ("braced",)),
    ("\ud800", STYLES),
    ("a\udfffb", ("fixed", "braced")),
    ("\udfff\ud800", ("raw",)),
    # Long enough to pass the length checks (passwords are 8 to 256 characters) and be hashed,
    # stored or rendered.
    ("a-long-password-\ud800-x", ("fixed",)),
    ("a-long-password-\x00-x", ("braced",)),
    ("x" * 201, ("fixed",)),
    ("x" * 1_000_000, ("raw",)),  # under the 1 MiB body limit
    ("x" * 1_100_000, ("fixed",)),  # over it: 413
    ("\u202e", ("braced",)),
    ("🙂" * 10_000, ("fixed", "braced")),
    ("\x01\x1f\x7f\x85\u2028\ufeff\uffff\U0010ffff", ("braced",)),
    ("\r\n\t", ("raw",)),
    ("e\u0301" * 300, ("fixed",)),
    (" \t ", ("fixed",)),
]
# Global IDs (base64 of "Type:pk") that decode to something odd.
ID_VALUES: list[tuple[str, tuple[str, ...]]] = [
    (b64("Article:" + "9" * 30), ()),
    (b64("Article:-1"), ()),
    (b64("Comment:١٢٣"), ()),  # Arabic-Indic digits: int() takes them
    (b64("Article:\ud800"), ()),  # not UTF-8
    (b64("Nope:1"), ()),
    (b64("Article:1") + "\ud800", ("fixed",)),
    (b64("[" * 100_000), ()),
]
YEAR_ONE = "0001-01-01T00:00:00+01:00"


def problems_text(problems: list[str]) -> str:
    shown = "\n".join(problems[:30]) + (
        f"\n… {len(problems) - 30} more" if len(problems) > 30 else ""
    )
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates print


# -- the tests ----------------------------------------------------------------------------------


def test_every_type_with_string_arguments_is_reached() -> None:
    """A type with string arguments that is neither a root nor a Node would be skipped here."""
    assert unreachable_types(SCHEMA) == []
    assert len(TARGETS) > 50, [str(t) for t in TARGETS]


@pytest.mark.parametrize("target", TARGETS, ids=str)
async def test_chosen_strings_are_never_internal_errors(world: World, target: Target) -> None:
    """NUL, lone surrogates, over-long and odd-looking values, every one of them in one run
    (a failure lists them all)."""
    values = VALUES + (ID_VALUES if target.type.rstrip("!") == "ID" else [])
    problems: list[str] = []
    for value, styles in values:
        problems += await world.probe(target, value, (*styles, "get"))
    assert not problems, problems_text(problems)


@pytest.mark.parametrize("target", TARGETS, ids=str)
@settings(max_examples=4, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(value=TEXT, style=st.sampled_from(STYLES))
async def test_arbitrary_text_is_never_an_internal_error(
    world: World, target: Target, value: str, style: str
) -> None:
    problems = await world.probe(target, value, (style,))
    assert not problems, problems_text(problems)


def forged_cursors(real: str | None) -> list[str]:
    """Cursors shaped like the connection's own: its real one with each value replaced by what
    a database or ``datetime`` chokes on, and a few broken encodings."""
    data: list[Any] | None = None
    if real is not None:
        decoded = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
        data = decoded if isinstance(decoded, list) else None
    if data is None:
        data = ["NEWEST", YEAR_ONE, 1]  # the articles' shape
    replacements: list[Any] = [YEAR_ONE, "\ud800", "\x00", 2**63, 1e308, None, []]
    forged = [
        b64url(json.dumps([*data[:i], replacement, *data[i + 1 :]]))
        for i in range(len(data))
        for replacement in replacements
    ]
    real = real or b64url(json.dumps(data))
    return [
        *forged,
        b64url(json.dumps([*data, 1])),
        b64url(json.dumps(data, ensure_ascii=False).replace("]", ',"\ud800"]')),  # not UTF-8
        b64url("[" * 100_000),
        b64url("9" * 5000),
        real.replace("-", "+").replace("_", "/") + "==",
        real + "\ud800",
    ]


def _end_cursor(data: Any) -> str | None:
    if isinstance(data, dict):
        for key, value in data.items():
            found = value if key == "endCursor" and isinstance(value, str) else _end_cursor(value)
            if found is not None:
                return found
    if isinstance(data, list):
        for value in data:
            found = _end_cursor(value)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize("target", [t for t in TARGETS if t.is_cursor], ids=str)
async def test_forged_cursors_are_never_internal_errors(world: World, target: Target) -> None:
    """Each connection's real cursor with a year-1 date (no UTC equivalent with a positive
    offset), a lone surrogate, 2**63, … in place of each of its values."""
    untargeted = Target(target.operation, target.owner, target.field, ("-",), "String")
    data = await world.data(
        world.document(untargeted, "", "", {"first": 1}), token=await world.viewer(target)
    )
    problems: list[str] = []
    for cursor in forged_cursors(_end_cursor(data)):
        problems += await world.probe(target, cursor)
    assert not problems, problems_text(problems)
