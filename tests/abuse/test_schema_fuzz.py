"""Schema fuzzing with schemathesis: every query and mutation, anonymous and logged in.

schemathesis reads the schema by introspection and generates documents for each root field of
``Query`` and ``Mutation`` (hypothesis-graphql: random selections, literal arguments); they go
to the app in process (schemathesis' ASGI transport) on a SQLite database of its own with the
demo data. Every operation runs as each of ``IDENTITIES``: anonymous, ``alice`` (READER) and
``admin`` (ADMIN), logged in with ``logIn`` and sent as ``Authorization: Bearer``; a case that
logs out or changes the password is followed by a new log-in. Whatever the input, the API must
never answer HTTP 5xx nor ``INTERNAL_SERVER_ERROR``, every error must carry an
``extensions.code``, and the app must log no error.

The scalars get strategies of our own, mostly valid so that resolvers run past their checks
(trades happen, markets get created and settled) and partly not: ``Decimal`` (plain decimals at
money and share scale, extremes, exponents, NaN, non-strings), ``DateTime`` (ISO 8601 near now
and at the ends of the calendar, with and without offsets, garbage), ``ID`` (global IDs of the
demo data, base64 of "Type:pk", of no row, of no type, garbage) and ``String`` (the demo data's
slugs and usernames, ``demo-password``, cursors of every order, any text). Three cases in four
are then "repaired" by argument name: one paging direction and small pages, IDs of the type the
argument takes (an outcome of the market being resolved), slugs of the type being fetched, a
quote with one amount, a createMarket question and outcomes that pass; IDs (a comment just
posted: schemathesis' resource pool) and cursors (of any list and order) seen in earlier answers
are drawn again.

Size: 30 operations (every root field: 17 queries, 13 mutations; asserted) × 3 identities ×
(``EXAMPLES`` = 15 examples, then ``EDGE_EXAMPLES`` = 10 with every Decimal and DateTime at an
edge): 2,250 requests in about 60 s on a 2-core machine, under ``RUN_SECONDS`` (asserted). Each
phase, operation and identity has a fixed seed and no example database, so every run generates
the same documents (a cursor drawn from an answer can differ: it holds the time a row was made).
``AGORA_FUZZ_EXAMPLES``, ``AGORA_FUZZ_EDGE_EXAMPLES`` and ``AGORA_FUZZ_SEED`` make a longer or
another hunt by hand. Problems are collected, not raised, so one run reports them all, each with
its document, its answer and the traceback the app logged.

Run: ``.venv/bin/python -m pytest tests/abuse/test_schema_fuzz.py -s`` (prints the run's size
and, per operation, how many answers were executed, refused in the payload or errors).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

import graphql
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.graphql import nodes
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.graphql import scalars as schemathesis_scalars
from schemathesis.specs.graphql.handles import Handle
from tortoise import Tortoise

import accounts.passwords
from api.core.node import NODE_TYPES, to_global_id
from app import create_app
from db import models
from db.config import tortoise_config
from settings import Settings
from tests.conftest import forget_compiled_statements, new_database, prepare_database, with_settings

# Examples per operation and identity: 30 root fields × 3 identities × (EXAMPLES + EDGE_EXAMPLES).
EXAMPLES = int(os.environ.get("AGORA_FUZZ_EXAMPLES", "15"))
# Then a few with every Decimal and DateTime at an edge (year 1 and 9999, the largest amounts).
EDGE_EXAMPLES = int(os.environ.get("AGORA_FUZZ_EDGE_EXAMPLES", "10"))
PHASES = (("mixed", EXAMPLES), ("edges", EDGE_EXAMPLES))
# Added to every operation's seed: another value sends other documents (a longer hunt).
SEED = int(os.environ.get("AGORA_FUZZ_SEED", "0"))
# The whole test (database, demo data, app, every identity) must fit this on a 2-core machine.
RUN_SECONDS = 120
IDENTITIES = ("anonymous", "alice", "admin")
PASSWORD = "demo-password"
# The fuzzer explores resolvers, not the rate limiters (tests/accounts, tests/comments do).
LOOSE_RATE = "1000000/1"
# Chance that a case is repaired by argument name (see the module docstring).
REPAIR_CHANCE = 0.75

_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

MODELS: dict[str, Any] = {
    "Article": models.Article,
    "Author": models.Author,
    "Category": models.Category,
    "Tag": models.Tag,
    "Comment": models.Comment,
    "User": models.User,
    "Market": models.Market,
    "Outcome": models.Outcome,
    "Trade": models.Trade,
}
SLUGGED = ("Article", "Author", "Category", "Tag", "Market")
# Every Ordering of api/*/lists.py, its name and the kinds of its sort values (a cursor holds
# both; positions' NEWEST has one value only, the others' two).
ORDER_SHAPES = {
    "NEWEST": ("datetime", "int"),
    "OLDEST": ("datetime", "int"),
    "MOST_COMMENTED": ("int", "datetime", "int"),
    "TOP": ("int", "datetime", "int"),
    "REPORTED": ("int", "datetime", "int"),
    "NAME": ("str", "int"),
    "VOLUME": ("int", "int"),
    "CLOSING_SOON": ("int", "datetime", "int"),
    "TRENDING": ("int", "datetime", "int"),
}
# Input fields and arguments holding IDs, by the type they take.
ID_ARGUMENTS = {
    "outcomeId": "Outcome",
    "marketId": "Market",
    "articleId": "Article",
    "articleIds": "Article",
    "commentId": "Comment",
    "parentId": "Comment",
}
PAGING = {"first", "last", "after", "before"}
MARKET_INPUTS: dict[str, Callable[[Random], Any]] = {
    "question": lambda rng: nodes.String(f"Will the fuzzer find bug number {rng.randint(1, 99)}?"),
    "resolutionCriteria": lambda rng: nodes.String("Resolves Yes if it does."),
    "liquidity": lambda rng: nodes.String(rng.choice(["10.00", "100.00", "500.00"])),
    "outcomes": lambda rng: nodes.List(
        [nodes.String(label) for label in ("Yes", "No", "Maybe", "Later")[: rng.randint(2, 4)]]
    ),
}


def test_names_match_the_schema() -> None:
    assert set(MODELS) == set(NODE_TYPES)


@dataclass
class DemoPools:
    """Values of the demo data the strategies draw from."""

    pks: dict[str, list[int]] = field(default_factory=dict)
    slugs: dict[str, list[str]] = field(default_factory=dict)
    usernames: list[str] = field(default_factory=list)
    outcomes_of: dict[int, list[int]] = field(default_factory=dict)

    def ids(self, type_name: str) -> list[str]:
        return [to_global_id(type_name, pk) for pk in self.pks[type_name]]

    def strings(self) -> list[str]:
        slugs = [slug for name in SLUGGED for slug in self.slugs[name][:10]]
        return [*slugs, *self.usernames, PASSWORD, "a-new-password", ""]


async def _demo_pools(settings: Settings) -> DemoPools:
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(settings))
    try:
        pools = DemoPools()
        for name, model in MODELS.items():
            pools.pks[name] = sorted(await model.all().values_list("id", flat=True))
        for name in SLUGGED:
            pools.slugs[name] = sorted(await MODELS[name].all().values_list("slug", flat=True))
        usernames = await models.User.all().values_list("username", flat=True)
        pools.usernames = sorted(str(username) for username in usernames)
        for pk, market_pk in await models.Outcome.all().values_list("id", "market_id"):
            pools.outcomes_of.setdefault(market_pk, []).append(pk)
    finally:
        await Tortoise.close_connections()
    return pools


@pytest.fixture
async def fuzz_settings(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, DemoPools]:
    """A SQLite database of its own with the demo data; password hashing made cheap."""
    monkeypatch.setattr(accounts.passwords, "_hasher", _cheap_hasher)
    url = await new_database(request, "sqlite", tmp_path_factory.mktemp("fuzz"))
    settings = await prepare_database(url, demo=True)
    settings = with_settings(
        settings,
        comment_rate=LOOSE_RATE,
        login_failure_rate_per_account=LOOSE_RATE,
        login_failure_rate_per_address=LOOSE_RATE,
        signup_rate_per_address=LOOSE_RATE,
        change_password_failure_rate=LOOSE_RATE,
    )
    return settings, await _demo_pools(settings)


# -- strategies for the scalars ------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def id_strategy(pools: DemoPools) -> st.SearchStrategy[Any]:
    """Mostly real global IDs; then of no row, of a type that doesn't exist, and garbage."""
    real = st.sampled_from([id_ for name in NODE_TYPES for id_ in pools.ids(name)[:40]])
    missing = st.builds(
        to_global_id,
        st.sampled_from(NODE_TYPES),
        st.sampled_from([0, 999_999, 2**31 - 1, 2**31, 10**12]),
    )
    odd = st.one_of(
        st.text(max_size=30).map(_b64),
        st.builds(
            lambda type_name, pk: _b64(f"{type_name}:{pk}"),
            st.sampled_from([*NODE_TYPES, "Session", "Position", ""]),
            st.sampled_from(["-1", "01", "1.5", " 1", "1e3", "", "١", str(2**64)]),
        ),
        st.text(max_size=30),
    )
    return st.one_of(real, real, real, missing, odd).map(nodes.String)


def _plain(value: Decimal) -> str:
    return format(value, "f")


DECIMAL_EDGES = (
    "0",
    "0.00",
    "0.01",
    "0.0001",
    "0.00001",
    "-0.01",
    "99999999999999999999.99999999999999999999",
    "-99999999999999999999",
    "1000000000",
    "92233720368547758.07",
    "0.000000000000000000001",
    "000000000000001.5",
)
DECIMAL_REFUSED = ("1e3", "NaN", "Infinity", "-inf", "", " 1", "1,5", "0x10", "+1")
DATETIME_EDGES = (
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T00:00:00-05:00",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999+00:00",
    "1970-01-01T00:00:00Z",
    "2027-01-01",
    "2027-01-01T00:00:00Z",
    "2027-02-30T00:00:00Z",
    "not a time",
    "",
)


def decimal_strategy(edges_only: bool) -> st.SearchStrategy[Any]:
    """Money and share amounts, mostly valid; extremes and what the scalar refuses."""
    edges = st.sampled_from(DECIMAL_EDGES).map(nodes.String)
    if edges_only:
        return edges
    money = st.decimals(min_value=-20, max_value=2000, places=2).map(_plain)
    shares = st.decimals(min_value=-20, max_value=2000, places=4).map(_plain)
    refused = st.sampled_from(DECIMAL_REFUSED)
    strings = st.one_of(money, money, money, shares, shares, refused).map(nodes.String)
    others = st.one_of(
        st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.booleans().map(nodes.Boolean),
    )
    return st.one_of(*[strings] * 5, edges, others)


def datetime_strategy(edges_only: bool) -> st.SearchStrategy[Any]:
    """ISO 8601 times near now and at the ends of the calendar; and what isn't one."""
    edges = st.sampled_from(DATETIME_EDGES).map(nodes.String)
    if edges_only:
        return edges
    now = datetime(2026, 11, 20, tzinfo=UTC)
    near = st.integers(min_value=-400 * 24, max_value=400 * 24).map(
        lambda hours: (now + timedelta(hours=hours)).isoformat()
    )
    anywhere = st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat)
    strings = st.one_of(near, near, anywhere).map(nodes.String)
    return st.one_of(strings, strings, strings, edges, st.integers().map(nodes.Int))


def cursor_strategy() -> st.SearchStrategy[str]:
    """Cursors as the API makes them (base64 of a JSON list: the order's name, then its sort
    values), of every order's shape with edge values, and of any shape."""
    ints = st.one_of(
        st.integers(min_value=-5, max_value=2000),
        st.sampled_from([2**31 - 1, 2**31, -(2**31), 2**63 - 1, 2**63, 10**30]),
    )
    times = st.one_of(
        st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat),
        st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026"]),
    )
    kinds = {"int": ints, "datetime": times, "str": st.text(max_size=20)}
    shaped = st.sampled_from(sorted(ORDER_SHAPES.items())).flatmap(
        lambda item: st.tuples(st.just(item[0]), *[kinds[kind] for kind in item[1]])
    )
    anything = st.one_of(ints, times, st.text(max_size=20), st.none(), st.floats(), st.booleans())
    shapeless = st.tuples(
        st.sampled_from(sorted(ORDER_SHAPES)), st.lists(anything, max_size=4)
    ).map(lambda item: (item[0], *item[1]))
    return st.one_of(shaped, shaped, shapeless).map(
        lambda values: (
            base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")
        )
    )


def string_strategy(pools: DemoPools) -> st.SearchStrategy[Any]:
    """The demo data's slugs and usernames, the demo password, cursors, and any text."""
    known = st.sampled_from(pools.strings())
    return st.one_of(known, known, cursor_strategy(), st.text()).map(nodes.String)


def use_scalars(pools: DemoPools, edges_only: bool) -> None:
    """Our strategies, in schemathesis' (global) registry: read when each case is drawn."""
    schemathesis.graphql.scalar("Decimal", decimal_strategy(edges_only))
    schemathesis.graphql.scalar("DateTime", datetime_strategy(edges_only))
    schemathesis.graphql.scalar("ID", id_strategy(pools))
    schemathesis.graphql.scalar("String", string_strategy(pools))


@contextmanager
def custom_scalars(pools: DemoPools) -> Iterator[None]:
    """Our strategies registered for the run, schemathesis' own restored after it."""
    saved = dict(schemathesis_scalars.CUSTOM_SCALARS)
    use_scalars(pools, edges_only=False)
    try:
        yield
    finally:
        schemathesis_scalars.CUSTOM_SCALARS.clear()
        schemathesis_scalars.CUSTOM_SCALARS.update(saved)


# -- repairs by argument name ---------------------------------------------------------------------


class Repair(graphql.Visitor):
    """Makes a generated document likelier to run: see the module docstring."""

    def __init__(self, pools: DemoPools, seen: Any, cursors: Cursors, rng: Random) -> None:
        super().__init__()
        self.pools = pools
        self.seen = seen
        self.cursors = cursors
        self.rng = rng
        self.market: int | None = None

    def enter_field(self, node: graphql.FieldNode, *_: Any) -> graphql.FieldNode:
        arguments = tuple(node.arguments or ())
        names = {argument.name.value for argument in arguments}
        if names & PAGING:
            arguments = self.paging(arguments, names)
        self.market = None
        fixed = []
        for argument in arguments:
            value = self.value(argument.name.value, argument.value, node.name.value)
            fixed.append(graphql.ArgumentNode(name=argument.name, value=value))
        return graphql.FieldNode(
            alias=node.alias,
            name=node.name,
            arguments=tuple(fixed),
            directives=node.directives,
            selection_set=node.selection_set,
        )

    def paging(self, arguments: tuple[Any, ...], names: set[str]) -> tuple[Any, ...]:
        """One direction, usually no cursor, pages of 0-5 (nested lists multiply)."""
        backward = bool(names & {"last", "before"}) and self.rng.random() < 0.3
        dropped = {"first", "after"} if backward else {"last", "before"}
        if self.rng.random() < 0.8:
            dropped |= {"after", "before"}
        return tuple(argument for argument in arguments if argument.name.value not in dropped)

    def value(self, name: str, value: Any, field_name: str, element: bool = False) -> Any:
        """``value`` of argument or input field ``name`` of ``field_name``, repaired; one in
        ten is left as drawn (a whole list at once, not one element in ten)."""
        rng = self.rng
        if isinstance(value, graphql.ObjectValueNode):
            fields = list(value.fields)
            names = {item.name.value for item in fields}
            if {"amount", "shares"} <= names and field_name == "quote":
                drop = rng.choice(["amount", "shares"])
                fields = [item for item in fields if item.name.value != drop]
            # marketId first, so that outcomeId can be one of that market's outcomes.
            fields.sort(key=lambda item: item.name.value != "marketId")
            return graphql.ObjectValueNode(
                fields=tuple(
                    graphql.ObjectFieldNode(
                        name=item.name, value=self.value(item.name.value, item.value, field_name)
                    )
                    for item in fields
                )
            )
        if not element and rng.random() < 0.1:
            return value
        if field_name == "createMarket" and name in MARKET_INPUTS and rng.random() < 0.7:
            # Values that pass, so that the checks after them (closesAt, liquidity) run.
            return MARKET_INPUTS[name](rng)
        if isinstance(value, graphql.ListValueNode):
            return graphql.ListValueNode(
                values=tuple(self.value(name, item, field_name, True) for item in value.values)
            )
        if name in ("first", "last", "limit") and isinstance(value, graphql.IntValueNode):
            return graphql.IntValueNode(value=str(abs(int(value.value)) % 6))
        if not isinstance(value, graphql.StringValueNode):
            return value
        text = value.value
        if name in ("after", "before") and self.cursors.seen:
            text = rng.choice(self.cursors.seen)
        elif name in ID_ARGUMENTS:
            type_name = ID_ARGUMENTS[name]
            pks = self.pools.pks[type_name]
            if type_name == "Outcome" and self.market in self.pools.outcomes_of:
                pks = self.pools.outcomes_of[self.market]
            pk = rng.choice(pks)
            if type_name == "Market":
                self.market = pk
            text = to_global_id(type_name, pk)
            if rng.random() < 0.3:
                text = self.seen.draw(handle=Handle(type_name, "id"), random=rng) or text
        elif name == "slug" and field_name.title() in SLUGGED:
            text = rng.choice(self.pools.slugs[field_name.title()])
        elif name in ("tagSlug", "tagSlugs"):
            text = rng.choice(self.pools.slugs["Tag"])
        elif name in ("categorySlug", "authorSlug"):
            text = rng.choice(self.pools.slugs[name.removesuffix("Slug").title()])
        elif name == "username" and field_name == "logIn":
            text = rng.choice(self.pools.usernames)
        elif name in ("password", "currentPassword"):
            text = PASSWORD
        return graphql.StringValueNode(value=text)


def repaired(query: str, pools: DemoPools, seen: Any, cursors: Cursors, rng: Random) -> str:
    repair = Repair(pools, seen, cursors, rng)
    return graphql.print_ast(graphql.visit(graphql.parse(query), repair))


class Cursors:
    """Cursors seen in answers, of any list and order, to page with (or to misuse) later."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def record(self, body: Any) -> None:
        if isinstance(body, dict):
            for key, value in body.items():
                if key in ("cursor", "startCursor", "endCursor") and isinstance(value, str):
                    if value not in self.seen and len(self.seen) < 500:
                        self.seen.append(value)
                else:
                    self.record(value)
        elif isinstance(body, list):
            for item in body:
                self.record(item)


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Finding:
    identity: str
    operation: str
    problem: str
    query: str
    status: int
    body: str
    logged: list[str]

    def __str__(self) -> str:
        logged = "\n".join(self.logged) or "(nothing logged)"
        return (
            f"[{self.identity}] {self.operation}: {self.problem}\n"
            f"  query: {self.query}\n  HTTP {self.status}: {self.body[:1500]}\n  log:\n{logged}"
        )


class ErrorLog(logging.Handler):
    """The app's logged errors (with tracebacks), collected between two cases."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(logging.Formatter().format(record)[-4000:])

    def take(self) -> list[str]:
        taken, self.records = self.records, []
        return taken


def problems_of(status: int, body: Any) -> list[str]:
    """What is wrong with one answer: 5xx, INTERNAL_SERVER_ERROR, an error without a code."""
    problems = []
    if status >= 500:
        problems.append(f"HTTP {status}")
    if not isinstance(body, dict):
        problems.append("the answer is not a JSON object")
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        if code is None:
            problems.append(f"error without extensions.code: {error!r:.300}")
        elif code == "INTERNAL_SERVER_ERROR":
            problems.append(f"INTERNAL_SERVER_ERROR at {error.get('path')}")
    return problems


def outcome_of(body: Any) -> str:
    """ "executed", "refused" (a payload's UserError) or "error", for the run's summary."""
    if not isinstance(body, dict) or body.get("errors") or not isinstance(body.get("data"), dict):
        return "error"
    payloads = [value for value in body["data"].values() if isinstance(value, dict)]
    if any(payload.get("errors") for payload in payloads):
        return "refused"
    return "executed"


Post = Callable[[str, dict[str, Any], dict[str, str]], Any]


class Identities:
    """Bearer tokens of the demo users, renewed when a case logs them out or changes a password."""

    def __init__(self, post: Post) -> None:
        self.post = post
        self.passwords = {"alice": PASSWORD, "admin": PASSWORD}
        self.tokens: dict[str, str] = {}

    def log_in(self, username: str, candidates: list[str]) -> None:
        for password in candidates:
            body = self.post(
                "mutation($u: String!, $p: String!) { logIn(input: {username: $u, password: $p})"
                " { token errors { code } } }",
                {"u": username, "p": password},
                {},
            )
            token = body["data"]["logIn"]["token"]
            if token:
                self.tokens[username] = token
                self.passwords[username] = password
                return
        raise AssertionError(f"cannot log {username} in again with any of {candidates}")

    def headers(self, identity: str) -> dict[str, str]:
        if identity == "anonymous":
            return {}
        if identity not in self.tokens:
            self.log_in(identity, [self.passwords[identity]])
        return {"Authorization": f"Bearer {self.tokens[identity]}"}

    def after(self, identity: str, query: str) -> None:
        """A new log-in after a case that may have ended the session or changed the password."""
        if identity == "anonymous" or ("logOut" not in query and "changePassword" not in query):
            return
        self.log_in(identity, [self.passwords[identity], *new_passwords(query)])


def new_passwords(query: str) -> list[str]:
    """Every ``newPassword`` literal in a document."""
    found: list[str] = []

    class Visitor(graphql.Visitor):
        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> None:
            if node.name.value == "newPassword" and isinstance(node.value, graphql.StringValueNode):
                found.append(node.value.value)

    graphql.visit(graphql.parse(query), Visitor())
    return found


@dataclass
class Run:
    pools: DemoPools
    identities: Identities
    seen: Any
    errors: ErrorLog
    cursors: Cursors = field(default_factory=Cursors)
    findings: list[Finding] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    coverage: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def operation(self, operation: Any, identity: str, phase: str, examples: int) -> None:
        """``examples`` cases of one operation as one identity."""

        @seed(SEED + zlib.crc32(f"{phase} {identity} {operation.label}".encode()))
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        # No feedback: schemathesis' own substitutions would draw from a pool that grows
        # during the run, which hypothesis refuses as flaky; the repairs draw from it instead,
        # with a Random whose draws hypothesis doesn't track.
        @given(
            case=operation.as_strategy(feedback=NO_FEEDBACK),
            rng=st.randoms(use_true_random=True),
        )
        def fuzz(case: Any, rng: Random) -> None:
            if rng.random() < REPAIR_CHANCE:
                case.body = repaired(case.body, self.pools, self.seen, self.cursors, rng)
            self.case(operation, identity, case)

        fuzz()

    def case(self, operation: Any, identity: str, case: Any) -> None:
        query: str = case.body
        self.errors.take()
        response = case.call(headers=self.identities.headers(identity))
        try:
            body = response.json()
        except ValueError:
            body = None
        outcome = outcome_of(body)
        self.outcomes[outcome] += 1
        self.coverage[operation.label][outcome] += 1
        problems = problems_of(response.status_code, body)
        logged = self.errors.take()
        if logged and not problems:
            problems = ["an error was logged"]
        self.findings += [
            Finding(
                identity,
                operation.label,
                problem,
                query,
                response.status_code,
                response.text,
                logged,
            )
            for problem in problems
        ]
        self.identities.after(identity, query)
        self.seen.record_response(operation=operation, response=response, case=case)
        self.cursors.record(body)

    def report(self) -> str:
        seen: set[tuple[str, str]] = set()
        shown = []
        for finding in self.findings:
            if (finding.operation, finding.problem) not in seen:
                seen.add((finding.operation, finding.problem))
                shown.append(str(finding))
        return f"{len(self.findings)} problems; one of each kind:\n\n" + "\n\n".join(shown)


def test_every_operation_survives_fuzzing(fuzz_settings: tuple[Settings, DemoPools]) -> None:
    settings, pools = fuzz_settings
    started = time.monotonic()
    errors = ErrorLog()
    agora_logger = logging.getLogger("agora")
    agora_logger.addHandler(errors)
    app = create_app(settings)
    try:
        with custom_scalars(pools):
            schema = schemathesis.graphql.from_asgi("/graphql", app)
            client = schemathesis_asgi.get_client(app)  # type: ignore[arg-type]

            def post(query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
                response = client.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                assert response.status_code == 200, response.text
                return response.json()

            run = Run(pools, Identities(post), schema.create_extra_data_source(), errors)
            operations = []
            for result in schema.get_all_operations():
                assert isinstance(result, Ok), result
                operations.append(result.ok())
            for phase, examples in PHASES:
                use_scalars(pools, edges_only=phase == "edges")
                for identity in IDENTITIES:
                    for operation in operations:
                        run.operation(operation, identity, phase, examples)
    finally:
        agora_logger.removeHandler(errors)
        schemathesis_asgi.shutdown_lifespans()
    elapsed = time.monotonic() - started
    requests = sum(run.outcomes.values())
    sizes = " + ".join(f"{count} ({phase})" for phase, count in PHASES)
    print(
        f"\nschema fuzz: {len(operations)} operations × {len(IDENTITIES)} identities × "
        f"{sizes} examples: {requests} requests ({dict(run.outcomes)}) in {elapsed:.1f} s"
    )
    for label, counts in sorted(run.coverage.items()):
        print(f"  {label}: {dict(counts)}")
    assert len(operations) >= 30, [operation.label for operation in operations]
    assert not run.findings, run.report()
    assert elapsed < RUN_SECONDS, f"the run took {elapsed:.1f} s, over {RUN_SECONDS} s"
