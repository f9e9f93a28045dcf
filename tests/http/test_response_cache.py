"""The response cache (RESPONSE_CACHE): exact freshness over HTTP, what is never kept, bounds,
and every loader, root field and mutation accounted for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.core.dataloader import lazy_loader
from api.core.node import to_global_id
from api.extensions.cachetags import LOADER_TAGS, ROOT_TAGS
from api.loaders import Loaders
from app.response_cache import ENTRY_OVERHEAD_BYTES, HEADER, RedisVersions, ResponseCache
from db import models
from settings import Settings
from tests.conftest import GraphQLClient, _client_for, seed_demo, with_settings
from tests.services import free_port

ARTICLE_PAGE = (
    Path(__file__).resolve().parents[2] / "demo" / "operations" / "ArticlePage.graphql"
).read_text()
CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"


@pytest.fixture
async def cached(fresh_settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client of an app with the response cache on, over its own demo database."""
    await seed_demo(fresh_settings)
    settings = with_settings(fresh_settings, response_cache=True)
    async for gql in _client_for(settings):
        yield gql


def cache_of(gql: GraphQLClient) -> ResponseCache:
    app: Any = gql.http._transport.app  # type: ignore[attr-defined]
    cache = app.state.graphql.response_cache
    assert isinstance(cache, ResponseCache)
    return cache


async def page(gql: GraphQLClient, method: str = "POST") -> tuple[str, dict[str, Any]]:
    """The article page: the cache's verdict and the body."""
    variables = {"slug": CENTRAL_ASIA}
    response: httpx.Response
    if method == "POST":
        response = await gql.http.post(
            "/graphql", json={"query": ARTICLE_PAGE, "variables": variables}
        )
    else:
        import json

        response = await gql.http.get(
            "/graphql", params={"query": ARTICLE_PAGE, "variables": json.dumps(variables)}
        )
    assert response.status_code == 200, response.text
    return response.headers.get(HEADER, ""), response.json()


async def test_a_page_is_kept_then_served_from_the_cache(cached: GraphQLClient) -> None:
    first = await page(cached)
    second = await page(cached)
    by_get = await page(cached, "GET")
    assert [first[0], second[0], by_get[0]] == ["miss", "hit", "hit"]
    assert first[1] == second[1] == by_get[1]
    assert "errors" not in first[1]
    entry = next(iter(cache_of(cached).entries.values()))
    article = await models.Article.get(slug=CENTRAL_ASIA)
    assert f"article:{article.id}" in entry.tags
    assert any(tag.startswith("market:") for tag in entry.tags)


async def test_a_comment_that_answered_is_on_the_next_read(cached: GraphQLClient) -> None:
    assert (await page(cached))[0] == "miss"
    assert (await page(cached))[0] == "hit"
    alice = await cached.log_in("alice")
    article = await models.Article.get(slug=CENTRAL_ASIA)
    posted = await alice.data(
        """mutation($a: ID!) { postComment(input: {articleId: $a, body: "fresh from the cache test"})
             { comment { id } errors { code } } }""",
        {"a": to_global_id("Article", article.id)},
    )
    assert posted["postComment"]["errors"] == []
    status, body = await page(cached)
    assert status == "miss"
    nodes = [edge["node"]["body"] for edge in body["data"]["article"]["comments"]["edges"]]
    assert nodes[0] == "fresh from the cache test"
    assert body["data"]["article"]["commentCount"] == article.comment_count + 1
    assert (await page(cached))[0] == "hit"


async def test_a_reply_that_answered_is_on_the_next_read(cached: GraphQLClient) -> None:
    _, body = await page(cached)
    edges = body["data"]["article"]["comments"]["edges"]
    parent = edges[-1]["node"]
    assert (await page(cached))[0] == "hit"
    alice = await cached.log_in("alice")
    article = await models.Article.get(slug=CENTRAL_ASIA)
    posted = await alice.data(
        """mutation($a: ID!, $p: ID!) { postComment(input: {articleId: $a, parentId: $p,
             body: "a reply"}) { comment { id } errors { code } } }""",
        {"a": to_global_id("Article", article.id), "p": parent["id"]},
    )
    assert posted["postComment"]["errors"] == []
    status, body = await page(cached)
    assert status == "miss"
    node = next(
        e["node"]
        for e in body["data"]["article"]["comments"]["edges"]
        if e["node"]["id"] == parent["id"]
    )
    assert node["replyCount"] == parent["replyCount"] + 1


async def test_a_trade_that_answered_is_on_the_next_read(cached: GraphQLClient) -> None:
    _, before = await page(cached)
    assert (await page(cached))[0] == "hit"
    market = before["data"]["article"]["markets"][0]
    row = await models.Market.get(slug=market["slug"])
    outcome = await models.Outcome.get(market_id=row.id, position=0)
    bob = await cached.log_in("bob")
    traded = await bob.data(
        """mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "50.00"}) {
             trade { probabilityAfter } errors { code } } }""",
        {"o": to_global_id("Outcome", outcome.id)},
    )
    assert traded["buyShares"]["errors"] == []
    status, after = await page(cached)
    assert status == "miss"
    probability = after["data"]["article"]["markets"][0]["outcomes"][0]["probability"]
    assert probability == pytest.approx(traded["buyShares"]["trade"]["probabilityAfter"])
    assert probability > market["outcomes"][0]["probability"]


async def test_a_profile_is_fresh_after_its_trade_and_its_comment(cached: GraphQLClient) -> None:
    query = """{ user(username: "erin_cached") { rank profit
                 comments(first: 5) { totalCount nodes { body } } } }"""

    async def read() -> tuple[str, Any]:
        response = await cached.http.post("/graphql", json={"query": query})
        assert response.status_code == 200, response.text
        return response.headers.get(HEADER, ""), response.json()["data"]["user"]

    # An unknown username is never kept: a sign-up may make it.
    assert [(await read())[0] for _ in range(2)] == ["bypass", "bypass"]
    erin = await cached.sign_up("erin_cached")
    status, before = await read()
    assert status == "miss"
    assert before == {"rank": None, "profit": "0.00", "comments": {"totalCount": 0, "nodes": []}}
    assert (await read()) == ("hit", before)

    outcome = (
        await models.Outcome.filter(market__state=models.MarketState.OPEN).order_by("id").first()
    )
    assert outcome is not None
    bought = await erin.data(
        """mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "25.00"}) {
             errors { code } } }""",
        {"o": to_global_id("Outcome", outcome.id)},
    )
    assert bought["buyShares"]["errors"] == []
    status, traded = await read()
    assert status == "miss"
    assert isinstance(traded["rank"], int)
    assert (await read()) == ("hit", traded)

    article = await models.Article.get(slug=CENTRAL_ASIA)
    posted = await erin.data(
        """mutation($a: ID!) { postComment(input: {articleId: $a, body: "erin was here"}) {
             errors { code } } }""",
        {"a": to_global_id("Article", article.id)},
    )
    assert posted["postComment"]["errors"] == []
    status, commented = await read()
    assert status == "miss"
    assert commented["comments"] == {"totalCount": 1, "nodes": [{"body": "erin was here"}]}


async def test_viewer_dependent_selections_are_never_kept(cached: GraphQLClient) -> None:
    query = """query($s: String!) { article(slug: $s) { comments(first: 2) { nodes {
                 id viewerCanEdit } } } }"""
    statuses = []
    for _ in range(3):
        response = await cached.http.post(
            "/graphql", json={"query": query, "variables": {"s": CENTRAL_ASIA}}
        )
        statuses.append(response.headers[HEADER])
    assert statuses == ["bypass", "bypass", "bypass"]
    assert cache_of(cached).entries == {}


async def test_authenticated_requests_are_never_served_from_the_cache(
    cached: GraphQLClient,
) -> None:
    assert (await page(cached))[0] == "miss"
    alice = await cached.log_in("alice")
    response = await cached.http.post(
        "/graphql",
        json={"query": ARTICLE_PAGE, "variables": {"slug": CENTRAL_ASIA}},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert response.status_code == 200
    assert HEADER not in response.headers


async def test_answers_with_errors_are_not_kept(cached: GraphQLClient) -> None:
    query = '{ node(id: "not-an-id") { id } }'
    statuses = []
    for _ in range(2):
        response = await cached.http.post("/graphql", json={"query": query})
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        statuses.append(response.headers[HEADER])
    assert statuses == ["bypass", "bypass"]
    assert cache_of(cached).entries == {}


async def test_uncacheable_root_fields_bypass(cached: GraphQLClient) -> None:
    for query in ("{ stats { articleCount } }", "{ me { id } }"):
        response = await cached.http.post("/graphql", json={"query": query})
        assert response.headers[HEADER] == "bypass", query
    assert cache_of(cached).entries == {}


async def test_memory_stays_within_its_bound(fresh_settings: Settings) -> None:
    await seed_demo(fresh_settings)
    settings = with_settings(fresh_settings, response_cache=True, response_cache_max_bytes=3000)
    async for gql in _client_for(settings):
        cache = cache_of(gql)
        slugs = [a.slug for a in await models.Article.all().order_by("id").limit(12)]
        for slug in slugs:
            response = await gql.http.post(
                "/graphql",
                json={
                    "query": "query($s: String!) { article(slug: $s) { title body } }",
                    "variables": {"s": slug},
                },
            )
            assert response.status_code == 200
            assert cache.bytes <= 3000
            assert cache.bytes == sum(e.size for e in cache.entries.values())
            # What an entry costs beyond its characters counts too (tiny answers add up).
            assert all(e.size >= ENTRY_OVERHEAD_BYTES + len(e.body) for e in cache.entries.values())
        assert 0 < len(cache.entries) < len(slugs)
        # The most recent is kept, the oldest went first.
        assert list(cache.entries)[-1][3] == '{"s":"' + slugs[-1] + '"}'


async def test_redis_down_bypasses(cached: GraphQLClient) -> None:
    cache = cache_of(cached)
    assert (await page(cached))[0] == "miss"
    assert (await page(cached))[0] == "hit"
    dead = with_settings(
        cache.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_limits_timeout_ms=200
    )
    memory = cache.versions
    cache.versions = RedisVersions(dead)
    try:
        assert [(await page(cached))[0] for _ in range(2)] == ["bypass", "bypass"]
    finally:
        await cache.versions.aclose()
        cache.versions = memory


def test_every_loader_and_root_field_declares_its_tags() -> None:
    # Every loader declared on the classes (made on first use: lazy_loader) or made in __init__.
    loaders = Loaders(None)
    names = {
        name
        for cls in type(loaders).__mro__
        for name, value in vars(cls).items()
        if isinstance(value, lazy_loader)
    } | {name for name, value in vars(loaders).items() if hasattr(value, "load")}
    assert {"user_by_id", "page_by_parent", "count_by_parent", "tags_by_article"} <= names
    assert names - set(LOADER_TAGS) == set()
    from api.schema import build_schema

    schema = build_schema(Settings())
    query = schema._schema.query_type
    assert query is not None
    assert set(query.fields) - set(ROOT_TAGS) == set()


# Writes whose effects no anonymous query can read: sessions (me is viewer-dependent), the
# password, the report counts (only the moderators' queue shows them), a new account (a user
# who doesn't exist yet is never cached: user_by_id misses are uncacheable).
NO_CACHED_EFFECT = {"logIn", "logOut", "changePassword", "reportComment", "signUp"}


async def test_every_mutation_bumps_or_has_no_cached_effect(cached: GraphQLClient) -> None:
    cache = cache_of(cached)
    versions: Any = cache.versions
    app: Any = cached.http._transport.app  # type: ignore[attr-defined]
    mutation = app.state.graphql.core.mutation_type
    admin = await cached.log_in("admin")
    editor = await cached.log_in("editor")
    article = await models.Article.get(slug=CENTRAL_ASIA)
    a_id = to_global_id("Article", article.id)
    bumped: set[str] = set()

    async def run(name: str, gql: GraphQLClient, query: str, variables: dict[str, Any]) -> Any:
        before = versions.sequence
        data = await gql.data(query, variables)
        assert data[name].get("errors") in ([], None), data
        if versions.sequence > before:
            bumped.add(name)
        return data[name]

    comment = await run(
        "postComment",
        admin,
        'mutation($a: ID!) { postComment(input: {articleId: $a, body: "x"}) { comment { id } errors { code } } }',
        {"a": a_id},
    )
    c_id = comment["comment"]["id"]
    await run(
        "editComment",
        admin,
        'mutation($c: ID!) { editComment(input: {commentId: $c, body: "y"}) { errors { code } } }',
        {"c": c_id},
    )
    await run(
        "deleteComment",
        admin,
        "mutation($c: ID!) { deleteComment(input: {commentId: $c}) { errors { code } } }",
        {"c": c_id},
    )
    created = await run(
        "createMarket",
        editor,
        """mutation($a: ID!) { createMarket(input: {question: "Will the response cache hold up?",
             description: "d", resolutionCriteria: "r", outcomes: ["Yes", "No"],
             closesAt: "2099-01-01T00:00:00Z", liquidity: "100.00", articleIds: [$a],
             tagSlugs: []}) { market { id outcomes { id } } errors { code } } }""",
        {"a": a_id},
    )
    market = created["market"]
    outcome = market["outcomes"][0]["id"]
    await run(
        "buyShares",
        admin,
        'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "5.00"}) { errors { code } } }',
        {"o": outcome},
    )
    await run(
        "sellShares",
        admin,
        'mutation($o: ID!) { sellShares(input: {outcomeId: $o, shares: "1"}) { errors { code } } }',
        {"o": outcome},
    )
    await run(
        "resolveMarket",
        admin,
        "mutation($m: ID!, $o: ID!) { resolveMarket(input: {marketId: $m, outcomeId: $o}) { errors { code } } }",
        {"m": market["id"], "o": outcome},
    )
    other = await run(
        "createMarket",
        editor,
        """mutation($a: ID!) { createMarket(input: {question: "Will a second cache market be created?", description: "d",
             resolutionCriteria: "r", outcomes: ["Yes", "No"], closesAt: "2099-01-01T00:00:00Z",
             liquidity: "100.00", articleIds: [$a], tagSlugs: []}) { market { id } errors { code } } }""",
        {"a": a_id},
    )
    await run(
        "cancelMarket",
        admin,
        "mutation($m: ID!) { cancelMarket(input: {marketId: $m}) { errors { code } } }",
        {"m": other["market"]["id"]},
    )
    drafted = await run(
        "createArticle",
        editor,
        """mutation { createArticle(input: {title: "A cached draft", categorySlug: "politics",
             body: "Text."}) { article { id } errors { code } } }""",
        {},
    )
    draft = drafted["article"]["id"]
    for name, query in (
        ("updateArticle", 'updateArticle(input: {articleId: $a, title: "Retitled"})'),
        ("publishArticle", "publishArticle(input: {articleId: $a})"),
        ("unpublishArticle", "unpublishArticle(input: {articleId: $a})"),
        ("archiveArticle", "archiveArticle(input: {articleId: $a})"),
    ):
        await run(
            name, editor, f"mutation($a: ID!) {{ {query} {{ errors {{ code }} }} }}", {"a": draft}
        )
    await run(
        "updateAuthorProfile",
        editor,
        'mutation { updateAuthorProfile(input: {bio: "New bio"}) { errors { code } } }',
        {},
    )
    assert set(mutation.fields) == bumped | NO_CACHED_EFFECT
    assert bumped & NO_CACHED_EFFECT == set()


class _FailingBumps:
    """In-process versions whose bumps fail until told otherwise (Redis lost mid-write)."""

    def __init__(self) -> None:
        from app.response_cache import MemoryVersions

        self.inner = MemoryVersions()
        self.failing = True
        self.renewed = 0

    async def read(self, tags: Any) -> Any:
        return await self.inner.read(tags)

    async def start(self) -> Any:
        return await self.inner.start()

    async def bump(self, tags: Any) -> bool:
        return False if self.failing else await self.inner.bump(tags)

    async def renew(self) -> bool:
        if self.failing:
            return False
        self.renewed += 1
        self.inner.generation = f"renewed-{self.renewed}"
        return True

    async def aclose(self) -> None:
        return None


async def test_a_failed_bump_flushes_and_bypasses_until_versions_are_renewed(
    cached: GraphQLClient,
) -> None:
    import asyncio

    cache = cache_of(cached)
    versions = _FailingBumps()
    cache.versions = versions
    cache.settings = with_settings(cache.settings, redis_limits_retry_seconds=0)
    assert [(await page(cached))[0] for _ in range(2)] == ["miss", "hit"]
    alice = await cached.log_in("alice")
    article = await models.Article.get(slug=CENTRAL_ASIA)
    posted = await alice.data(
        """mutation($a: ID!) { postComment(input: {articleId: $a, body: "bump lost"})
             { errors { code } } }""",
        {"a": to_global_id("Article", article.id)},
    )
    assert posted["postComment"]["errors"] == []
    # The bump failed: nothing kept is served, nothing new is kept.
    assert cache.entries == {}
    status, body = await page(cached)
    assert status == "bypass"
    assert body["data"]["article"]["comments"]["edges"][0]["node"]["body"] == "bump lost"
    assert cache.entries == {}
    versions.failing = False
    for _ in range(100):
        if not cache.unsure:
            break
        await asyncio.sleep(0.01)
    assert versions.renewed == 1
    assert [(await page(cached))[0] for _ in range(2)] == ["miss", "hit"]


async def test_a_bump_is_not_skipped_by_the_reads_outage_breaker(fresh_settings: Settings) -> None:
    """One slow read opens the reads' breaker for REDIS_LIMITS_RETRY_SECONDS: a write's bump
    in that window must still reach Redis (other workers check versions there), not be taken
    for failed because the breaker is open."""
    from tests.services import start_redis

    server = start_redis()
    try:
        settings = with_settings(fresh_settings, redis_url=server.url)
        versions = RedisVersions(settings)
        try:
            assert await versions.start() is None  # makes the generation
            started = await versions.start()
            assert started is not None
            # The breaker opens (as a timed-out read opens it) and stays open for a while.
            versions.outage.down = True
            versions.outage._retry_at = float("inf")
            assert await versions.read(["article:1"]) is None  # reads bypass meanwhile...
            assert await versions.bump(["article:1"]) is True  # ...bumps still land
            versions.outage.down = False
            current = await versions.read(["article:1"])
            assert current is not None and current[1][0] > started[1]
        finally:
            await versions.aclose()
    finally:
        server.stop()


async def test_only_the_miss_that_registered_a_key_ends_the_wait_on_it(
    cached: GraphQLClient,
) -> None:
    """Two misses of one key: the second (begun while the first ran) finishing first must not
    wake the first one's waiters, who would then execute the query themselves."""
    import asyncio

    cache = cache_of(cached)
    key = cache.key_of("{ categories { slug } }", None, None, None)
    first_may_end = asyncio.Event()

    async def first() -> None:
        assert await cache.begin(key) is not None
        await first_may_end.wait()
        cache.finish(key)

    async def second() -> None:
        assert await cache.begin(key) is not None
        cache.finish(key)

    one = asyncio.create_task(first())
    await asyncio.sleep(0.05)
    pending = cache.inflight[key]
    await asyncio.create_task(second())
    assert cache.inflight.get(key) is pending and not pending.done()
    first_may_end.set()
    await one
    assert key not in cache.inflight and pending.done()


def test_a_loader_read_after_release_is_refused() -> None:
    loaders = Loaders(None)
    assert loaders.user_by_id is loaders.user_by_id  # made once, then the instance's own
    loaders.release()
    with pytest.raises(AttributeError):
        _ = loaders.user_by_id
