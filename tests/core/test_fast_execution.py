"""The planned executor (api.core.execution) answers exactly as graphql-core's, over a corpus:
README's queries, the demo client's documents, the benchmark's, hand-written edge cases and
generated queries; and it really runs (a comparison that always fell back would prove nothing).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import strawberry
from asgi_lifespan import LifespanManager
from graphql import ExecutionResult, OperationDefinitionNode, OperationType, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries

from api.comments.subscriptions import COMMENT_ADDED
from api.context import Context, Services
from api.core import execution
from api.core.execution import plan_operation
from api.core.node import to_global_id
from api.extensions import format_errors
from api.extensions.response import estimated_size
from api.live import LiveGraphQL
from api.loaders import Loaders
from api.markets.subscriptions import odds_update
from api.schema import AgoraSchema, build_schema
from app import create_app
from db import models
from settings import Settings
from tests.conftest import GraphQLClient, forget_compiled_statements

ROOT = Path(__file__).resolve().parents[2]
CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"
# Shapes the plan takes, shapes it refuses (graphql-core runs them), and failures mid-way.
_ARTICLE = f'article(slug: "{CENTRAL_ASIA}")'
EDGE_CASES = [
    q.replace("ARTICLE", _ARTICLE)
    for q in (
        "{ __typename ARTICLE { __typename slug } }",
        '{ a: ARTICLE { t: title id } b: article(slug: "nope") { title } }',
        "{ ARTICLE { comments(first: 3, orderBy: TOP) { edges { node { id "
        "replies(first: 2) { totalCount nodes { author { username } } } } } } } }",
        "{ ARTICLE { comments(first: 500) { totalCount } title } }",
        "{ ARTICLE { relatedArticles(first: 99) { slug } slug } }",
        "{ ARTICLE { comments(first: 2) { nodes { reportCount body } } } }",
        '{ ARTICLE { comments(after: "not-a-cursor") { totalCount } } }',
        "{ ARTICLE { ...A } } fragment A on Article { slug title }",
        "{ ARTICLE { slug @include(if: false) title } }",
        "{ ARTICLE { slug slug title } }",
        "{ nodes(ids: []) { id } categories { breadcrumb { slug } parent { slug } } }",
        "{ authors(first: 3) { nodes { slug articleCount articles(first: 2) { nodes { slug } } } } }",
        "{ tags(first: 3) { nodes { slug articleCount markets(first: 2) { nodes { slug } } } } }",
        "{ markets(first: 3) { nodes { slug volume liquidity closesAt createdBy { username } "
        "tags { slug } articles { slug } priceHistory(interval: DAY) { at probabilities } } } }",
        "{ stats { articleCount commentCount marketCount openMarketCount traderCount volume } }",
        "{ me { username } leaderboard(first: 3) { nodes { rank } } }",
        "{ __schema { queryType { name } } }",
    )
]
ARTICLE_PAGE = (ROOT / "demo" / "operations" / "ArticlePage.graphql").read_text()


def readme_queries() -> list[str]:
    """The queries of README's ```graphql blocks."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", text, flags=re.S)
    found = []
    for block in blocks:
        try:
            document = parse(block)
        except Exception:
            continue
        if all(
            isinstance(d, OperationDefinitionNode) and d.operation == OperationType.QUERY
            for d in document.definitions
        ):
            found.append(block)
    return found


# README's "Home feed" query (the one the benchmark measures), as README prints it.
HOME = next(q for q in readme_queries() if q.lstrip().startswith("query Home"))
# Documents the fast path must take (the hot pages): asserted, not just compared.
MUST_BE_FAST = [(ARTICLE_PAGE, {"slug": CENTRAL_ASIA}), (HOME, {})]


def demo_queries() -> list[str]:
    """The demo client's query documents."""
    found = []
    for path in sorted((ROOT / "demo" / "operations").glob("*.graphql")):
        text = path.read_text()
        if re.search(r"^\s*query\b", text, flags=re.M):
            found.append(text)
    return found


# Values for the variables the corpus declares, by name (a missing one is an error, compared too).
VARIABLES: dict[str, Any] = {
    "slug": CENTRAL_ASIA,
    "first": 3,
    "id": "Q29tbWVudDox",
    "ids": ["Q29tbWVudDox", "Q29tbWVudDoy"],
    "outcomeId": "T3V0Y29tZTox",
    "amount": "5.00",
    "username": "alice",
}


@dataclass
class Executors:
    fast: AgoraSchema
    normal: AgoraSchema
    settings: Settings
    services: Services


@pytest.fixture
async def executors(demo_settings: Settings) -> AsyncIterator[Executors]:
    forget_compiled_statements()
    app = create_app(demo_settings)
    async with LifespanManager(app):
        assert demo_settings.fast_execution  # the default
        yield Executors(
            build_schema(demo_settings),
            build_schema(replace(demo_settings, fast_execution=False)),
            demo_settings,
            app.state.services,
        )


async def answer(schema: AgoraSchema, ex: Executors, query: str, variables: Any) -> str:
    """The whole answer as the HTTP view would encode it (key order included)."""
    context = Context(
        settings=ex.settings,
        services=ex.services,
        loaders=Loaders(ex.settings.max_response_objects),
    )
    result = await schema.execute(query, variable_values=variables, context_value=context)
    if context.response_size is not None:
        # The plan's size estimate, counted as it ran, is the HTTP view's walk's, exactly.
        assert context.response_size == estimated_size(result.data), query
    errors = [e.formatted for e in format_errors(result.errors) or []]
    return json.dumps({"data": result.data, "errors": errors}, default=str)


def used_variables(query: str) -> dict[str, Any]:
    names = set(re.findall(r"\$(\w+)\s*:", query))
    return {name: VARIABLES[name] for name in names if name in VARIABLES}


async def compare(ex: Executors, query: str, variables: Any = None) -> None:
    if variables is None:
        variables = used_variables(query)
    fast = await answer(ex.fast, ex, query, variables)
    normal = await answer(ex.normal, ex, query, variables)
    assert fast == normal, query


async def test_the_corpus_answers_alike(executors: Executors) -> None:
    corpus = [ARTICLE_PAGE, HOME, *readme_queries(), *demo_queries(), *EDGE_CASES]
    assert len(readme_queries()) >= 2
    before = replace(execution.stats)
    for query in corpus:
        await compare(executors, query)
    # Both ways through the plan were taken: answered there, and handed back on errors.
    assert execution.stats.fast - before.fast >= 10
    assert execution.stats.fallback - before.fallback >= 4


async def test_the_hot_pages_take_the_fast_path(executors: Executors) -> None:
    for query, variables in MUST_BE_FAST:
        before = replace(execution.stats)
        await compare(executors, query, variables)
        assert execution.stats.fast == before.fast + 1, query
        assert execution.stats.fallback == before.fallback, query


def test_shapes_the_plan_refuses() -> None:
    schema = build_schema(Settings(env="test"))._schema
    refused = [
        '{ article(slug: "x") { ...A } } fragment A on Article { slug }',
        '{ article(slug: "x") { slug @skip(if: true) } }',
        '{ article(slug: "x") { slug slug } }',
        '{ node(id: "x") { id } }',
        "{ __schema { types { name } } }",
        "mutation { logOut { ok } }",
        # Two root fields of a mutation run one after the other: graphql-core's.
        'mutation { a: logOut b: logIn(input: {username: "x", password: "y"}) { token } }',
    ]
    for text in refused:
        operation = parse(text).definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        assert plan_operation(schema, operation) is None, text
    operation = parse(ARTICLE_PAGE).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    assert plan_operation(schema, operation) is not None
    # One root field of a mutation (a trade) runs from a plan too.
    trade = parse(
        'mutation { buyShares(input: {marketId: "x", outcomeId: "y", amount: "1"}) '
        "{ errors { code } } }"
    ).definitions[0]
    assert isinstance(trade, OperationDefinitionNode)
    assert plan_operation(schema, trade) is not None


def test_the_article_page_calls_its_resolvers_directly() -> None:
    """Every resolver field of the article page is called as its own function (arguments
    converted once per operation), none through strawberry's per-call wrappers."""
    schema = build_schema(Settings(env="test"))._schema
    operation = parse(ARTICLE_PAGE).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    plan = plan_operation(schema, operation)
    assert plan is not None
    wrapped: list[str] = []
    direct: list[str] = []
    stack = [plan]
    while stack:
        level = stack.pop()
        for entry in level.fields:
            if entry.plan is not None:
                stack.append(entry.plan)
            if entry.definition is None or entry.attribute is not None:
                continue
            (direct if entry.direct is not None else wrapped).append(
                f"{level.type.name}.{entry.name}"
            )
    assert wrapped == []
    assert {"Query.article", "Article.comments", "Comment.replies", "Comment.author"} <= set(direct)


@pytest.fixture(scope="module")
def generated() -> st.SearchStrategy[str]:
    sdl = build_schema(Settings(env="test")).as_str()
    return queries(sdl, fields=["article", "articles", "categories", "markets", "tags", "stats"])


async def test_generated_queries_answer_alike(
    executors: Executors, generated: st.SearchStrategy[str]
) -> None:
    examples: list[str] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(generated)
    def collect(query: str) -> None:
        examples.append(query)

    collect()
    assert len(examples) >= 20
    for query in examples:
        await compare(executors, query, {})


# -- direct calls on schemas built for the purpose: what this schema has no field for ------------


@strawberry.type
class _Item:
    n: int

    @strawberry.field
    def picks(self, ids: list[int]) -> list[int]:
        ids.append(self.n)  # a resolver using its argument as scratch space
        return ids

    @strawberry.field
    async def within(self, r: _Range) -> int:
        return self.n

    @strawberry.field
    async def boom(self) -> int:
        raise RuntimeError("boom")


@strawberry.input
class _Range:
    lo: int

    def __post_init__(self) -> None:
        if self.lo < 0:
            raise ValueError("lo must be >= 0")


@strawberry.type
class _Query:
    @strawberry.field
    def items(self) -> list[_Item]:
        return [_Item(n=1), _Item(n=2), _Item(n=3)]


@pytest.mark.parametrize(
    "query",
    [
        # A list argument is converted per call: one parent's change isn't the next one's.
        "{ items { picks(ids: [0]) } }",
        # An async field's conversion error is the awaited call's, as graphql-core meets it.
        "{ items { boom within(r: {lo: -1}) } }",
    ],
)
async def test_direct_calls_answer_as_graphql_core(query: str) -> None:
    answers = []
    for context in (execution.FastExecutionContext, None):
        extra: dict[str, Any] = {"execution_context_class": context} if context else {}
        schema = strawberry.Schema(query=_Query, **extra)
        result = await schema.execute(query)
        errors = [(error.message, error.path) for error in result.errors or []]
        answers.append((result.data, errors))
    assert answers[0] == answers[1]


async def test_a_request_leaves_little_to_the_cyclic_collector(client: GraphQLClient) -> None:
    """Once an answer is built its loaders are let go (LoaderBase.release): the page's objects
    go by reference counting. Before, each article page left ~430 objects in reference cycles,
    and full collections of them paused the loop for tens of milliseconds (over this test's
    HTTP client: 86 now, 471 before)."""
    import gc

    variables = {"slug": CENTRAL_ASIA}
    for _ in range(5):
        await client.data(ARTICLE_PAGE, variables)
    gc.collect()
    gc.disable()
    try:
        for _ in range(40):
            await client.data(ARTICLE_PAGE, variables)
        per_request = gc.collect() / 40
    finally:
        gc.enable()
    assert per_request < 150, per_request


ARGUMENTS_VARY = """
query Thread($slug: String!, $first: Int!, $order: CommentOrder!) {
  article(slug: $slug) { comments(first: $first, orderBy: $order) { nodes { id } } }
}
"""


async def test_converted_arguments_are_kept_per_value_of_the_variables(
    executors: Executors,
) -> None:
    # Kept across requests by the coerced values: each set answers as graphql-core does,
    # a repeated set included (a stale conversion would answer the first set's page).
    slug = VARIABLES["slug"]
    sets = [(1, "NEWEST"), (3, "NEWEST"), (1, "OLDEST"), (3, "NEWEST"), (1, "NEWEST")]
    answers = []
    for first, order in sets:
        variables = {"slug": slug, "first": first, "order": order}
        await compare(executors, ARGUMENTS_VARY, variables)
        answers.append(await answer(executors.fast, executors, ARGUMENTS_VARY, variables))
    assert answers[0] == answers[4] and answers[1] == answers[3]
    assert len({answers[0], answers[1], answers[2]}) == 3
    kept = _kept_conversions("comments")
    assert kept and len(kept[-1]) == 3  # (1, NEWEST), (3, NEWEST), (1, OLDEST)


FILTERED = """
query Filtered($filter: ArticleFilter, $order: ArticleOrder!) {
  articles(first: 3, filter: $filter, orderBy: $order) { totalCount nodes { slug } }
}
"""


async def test_root_fields_keep_conversions_of_input_objects_per_value(
    executors: Executors,
) -> None:
    # A root field runs once a request: its input objects' conversions are kept across
    # requests too, by value (each set still answers as graphql-core does).
    sets: list[dict[str, Any]] = [
        {"filter": {"featured": True}, "order": "NEWEST"},
        {"filter": {"tagSlug": "central-asia"}, "order": "NEWEST"},
        {"filter": {"featured": True}, "order": "OLDEST"},
        {"filter": None, "order": "NEWEST"},
        {"filter": {"featured": True}, "order": "NEWEST"},
    ]
    answers = []
    for variables in sets:
        await compare(executors, FILTERED, variables)
        answers.append(await answer(executors.fast, executors, FILTERED, variables))
    assert answers[0] == answers[4]
    assert len({answers[0], answers[1], answers[2], answers[3]}) == 4
    kept = _kept_conversions("articles")
    assert kept and len(kept[-1]) == 4
    # Each call gets its own copy of a kept input object: assigning to it changes no other.
    converted = next(iter(kept[-1].values()))
    fresh = execution._fresh(converted)
    assert fresh == converted
    assert fresh["filter"] is not converted["filter"] or converted["filter"] is None


def test_conversion_keys_tell_inputs_apart() -> None:
    key = execution._conversion_key
    assert key({"f": {"a": 1}}) is None  # input objects only where asked for
    assert key({"f": {"a": 1}}, True) != key({"f": {"a": True}}, True)
    assert key({"f": [1, 2]}, True) != key({"f": [2, 1]}, True)
    assert key({"f": {"a": "x" * (execution.MAX_CONVERSION_KEY_CHARS + 1)}}, True) is None
    assert key({"f": {"a": object()}}, True) is None


def _kept_conversions(field_name: str) -> list[dict[tuple[Any, ...], dict[str, Any]]]:
    """The argument sets each plan keeps across requests for fields named ``field_name``."""
    return [
        entry.conversions
        for _, _, plan in execution._plans.values()
        if plan is not None
        for entry in _fields(plan)
        if entry.name == field_name and entry.conversions
    ]


def _fields(plan: Any) -> list[Any]:
    found = []
    for entry in plan.fields:
        found.append(entry)
        if entry.plan is not None:
            found.extend(_fields(entry.plan))
    return found


SUBSCRIPTION_EVENTS = [
    # What a comment feed and a market widget select (bench.fanout's documents), a nested
    # relation, and a viewer-dependent field in a shared execution (an error: graphql-core's).
    (
        "subscription($a: ID!) { commentAdded(articleId: $a) { id sequence body bodyHtml "
        "createdAt replyCount deleted author { username displayName initials } parent { id } } }",
        "comment",
    ),
    (
        "subscription($a: ID!) { commentAdded(articleId: $a) { id article { slug title "
        "breadcrumb { slug } } replies(first: 2) { totalCount nodes { id } } } }",
        "comment",
    ),
    ("subscription($a: ID!) { commentAdded(articleId: $a) { id viewerCanEdit } }", "comment"),
    (
        "subscription($m: ID!) { oddsUpdated(marketId: $m) { seq at "
        "market { id status volume } outcomes { id label probability } "
        "lastTrade { id shares amount probabilityAfter } } }",
        "odds",
    ),
]


@pytest.mark.parametrize(("document", "kind"), SUBSCRIPTION_EVENTS)
async def test_subscription_events_answer_alike(
    executors: Executors, document: str, kind: str
) -> None:
    # An event's execution as the hub runs it (the layer's executor class, the per-event copy,
    # a shared context): the planned executor answers exactly what graphql-core answers.
    comment = await models.Comment.filter(deleted=False, parent_id=None).order_by("id").first()
    market = await models.Market.all().order_by("id").first()
    assert comment is not None and market is not None
    article_gid = strawberry.ID(to_global_id("Article", comment.article_id))
    market_gid = strawberry.ID(to_global_id("Market", market.id))
    variables = {"a": article_gid} if kind == "comment" else {"m": market_gid}
    layers = [
        LiveGraphQL(schema, executors.settings, executors.services)
        for schema in (executors.fast, executors.normal)
    ]
    # One root for both (an odds update carries the time it was made).
    loaders = layers[0].loaders()
    root = (
        await COMMENT_ADDED.root(
            comment.article_id, {"kind": "added", "comment_id": comment.id}, loaders
        )
        if kind == "comment"
        else await odds_update(market.id, None, None, loaders)
    )
    assert root is not None
    answers = []
    before = replace(execution.stats)
    for layer in layers:
        built = layer.executor_class.build(
            layer.schema, parse(document), raw_variable_values=variables
        )
        assert not isinstance(built, list), built
        event = built.build_per_event_executor(root)
        event.context_value = layer.context(layer.loaders(), None, shared=True)
        outcome: Any = event.execute_operation(False)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        result: ExecutionResult = outcome
        errors = [e.formatted for e in layer.format_errors(list(result.errors or []))]
        answers.append(json.dumps({"data": result.data, "errors": errors}, default=str))
    assert answers[0] == answers[1], document
    assert '"errors": []' in answers[0] or "viewerCanEdit" in document
    # The fast layer took its plan (and, for the viewer's field, handed back to graphql-core).
    assert execution.stats.fast + execution.stats.fallback == before.fast + before.fallback + 1


async def test_long_argument_values_are_converted_but_not_kept(executors: Executors) -> None:
    # A 1 MB slug per request would otherwise be kept 64 times in each cached operation.
    document = "query Long($slug: String!) { article(slug: $slug) { id } }"
    for n in range(3):
        long_slug = f"{n}" + "x" * (execution.MAX_CONVERSION_KEY_CHARS + 1)
        await compare(executors, document, {"slug": long_slug})
    await compare(executors, document, {"slug": VARIABLES["slug"]})
    kept = _kept_conversions("article")
    # (Query.article's sets: keyed by the slug; an earlier test's Comment.article has none.)
    slugs = [key[0][1][1] for found in kept for key in found if key and key[0][0] == "slug"]
    assert VARIABLES["slug"] in slugs
    assert all(len(slug) <= execution.MAX_CONVERSION_KEY_CHARS for slug in slugs)


def test_a_kept_input_is_copied_whole_for_each_call() -> None:
    from dataclasses import dataclass, field

    @dataclass
    class Flat:
        tags: list[str] = field(default_factory=list)
        name: str = ""

    kept = {"filter": Flat(["a"], "x"), "first": 3, "ids": [1, 2]}
    fresh = execution._fresh(kept)
    fresh["filter"].tags.append("b")
    fresh["filter"].name = "y"
    fresh["ids"].append(3)
    assert kept == {"filter": Flat(["a"], "x"), "first": 3, "ids": [1, 2]}
    # Nested input objects are never kept (so never shared): no key for them.
    assert execution._conversion_key({"f": {"inner": {"a": 1}}}, True) is None
    assert execution._conversion_key({"f": [{"a": 1}]}, True) is None
    assert execution._conversion_key({"ids": list(range(600))}, True) is None
