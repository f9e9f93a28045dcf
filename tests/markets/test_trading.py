"""Trading over HTTP: exact money, refusals that move nothing, concurrency, settlement."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from accounts.ratelimit import MemoryRateLimiter
from api.core.node import from_global_id, to_global_id
from db import models
from markets.audit import audit
from settings import Settings
from tests.conftest import FakeClock, GraphQLClient, _client_for, new_database, prepare_database

CREATE = """
mutation($input: CreateMarketInput!) {
  createMarket(input: $input) { market { id slug status liquidity volume traderCount
    outcomes { id label probability } createdBy { username } tags { slug } articles { slug } }
    errors { code field message } }
}
"""
BUY = """
mutation($input: BuySharesInput!) {
  buyShares(input: $input) {
    trade { id shares amount probabilityBefore probabilityAfter user { username } outcome { id } }
    position { shares costBasis value profit outcome { id } }
    market { volume traderCount outcomes { probability } }
    balance errors { code field message }
  }
}
"""
SELL = """
mutation($input: SellSharesInput!) {
  sellShares(input: $input) {
    trade { id shares amount probabilityBefore probabilityAfter }
    position { shares costBasis value profit }
    market { volume outcomes { probability } }
    balance errors { code field message }
  }
}
"""
QUOTE = """
query($input: QuoteInput!) {
  quote(input: $input) { shares amount averagePrice probabilityBefore probabilityAfter outcome { id } }
}
"""
RESOLVE = """
mutation($m: ID!, $o: ID!) {
  resolveMarket(input: {marketId: $m, outcomeId: $o}) {
    market { status resolvedAt resolvedOutcome { id } outcomes { probability } }
    errors { code }
  }
}
"""
CANCEL = """
mutation($m: ID!) { cancelMarket(input: {marketId: $m}) { market { status } errors { code } } }
"""
ME = "{ me { balance } }"


async def _new_market(
    admin: GraphQLClient, liquidity: str = "100.00", outcomes: list[str] | None = None
) -> dict[str, Any]:
    data = await admin.data(
        CREATE,
        {
            "input": {
                "question": "Will the test market behave exactly?",
                "description": "A market made by a test.",
                "resolutionCriteria": "Resolves by the test's decision.",
                "outcomes": outcomes or ["Yes", "No"],
                "closesAt": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "liquidity": liquidity,
            }
        },
    )
    payload = data["createMarket"]
    assert payload["errors"] == [], payload["errors"]
    market: dict[str, Any] = payload["market"]
    return market


async def _snapshot() -> tuple[Any, ...]:
    return (
        tuple(await models.LedgerAccount.all().order_by("id").values_list("id", "balance_cents")),
        await models.LedgerEntry.all().count(),
        await models.Trade.all().count(),
        tuple(await models.Outcome.all().order_by("id").values_list("id", "shares_units")),
        tuple(
            await models.Position.all()
            .order_by("id")
            .values_list("id", "shares_units", "cost_basis_cents", "realized_cents")
        ),
        tuple(await models.Market.all().order_by("id").values_list("id", "state", "volume_cents")),
        await models.IdempotencyKey.all().count(),
        await models.PricePoint.all().count(),
    )


async def _balance(user: GraphQLClient) -> str:
    balance: str = (await user.data(ME))["me"]["balance"]
    return balance


async def _admin(client: GraphQLClient, name: str = "boss") -> GraphQLClient:
    admin = await client.sign_up(name)
    await models.User.filter(username=name).update(role=models.Role.ADMIN)
    return admin


async def test_create_market_is_funded_by_the_issuer(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    issuer_before = (await models.LedgerAccount.get(kind="ISSUER")).balance_cents
    market = await _new_market(admin, "250.00", ["Red", "Green", "Blue"])
    assert market["status"] == "OPEN"
    assert market["liquidity"] == "250.00"
    assert market["volume"] == "0.00" and market["traderCount"] == 0
    assert [o["label"] for o in market["outcomes"]] == ["Red", "Green", "Blue"]
    assert all(math.isclose(o["probability"], 1 / 3) for o in market["outcomes"])
    assert market["createdBy"] == {"username": "boss"}
    maker = await models.LedgerAccount.get(market_id=from_global_id(market["id"])[1])
    assert maker.balance_cents == 25000
    issuer = await models.LedgerAccount.get(kind="ISSUER")
    assert issuer.balance_cents == issuer_before - 25000
    assert (await audit()).problems == []


@dataclass(frozen=True)
class SharedMarket:
    """A database with one open Yes/No market, and the session tokens of its users."""

    settings: Settings
    admin: str
    bob: str  # bought 10.00 of Yes with the idempotency key "k1"
    carl: str  # a reader who holds nothing
    yes: str
    no: str


@pytest.fixture(scope="module")
async def shared_market(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> SharedMarket:
    """One market per backend for the refusals below rather than a database, accounts and a
    market per case: each refusal moves nothing, and asserts so."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    settings = await prepare_database(url, demo=False)
    async for gql in _client_for(settings, MemoryRateLimiter(clock=FakeClock())):
        admin = await _admin(gql)
        created = await _new_market(admin)
        yes, no = (o["id"] for o in created["outcomes"])
        bob = await gql.sign_up("bob")
        await bob.data(
            BUY, {"input": {"outcomeId": yes, "amount": "10.00", "idempotencyKey": "k1"}}
        )
        carl = await gql.sign_up("carl")
    assert admin.token and bob.token and carl.token
    return SharedMarket(settings, admin.token, bob.token, carl.token, yes, no)


@pytest.fixture
async def on_shared_market(shared_market: SharedMarket) -> AsyncIterator[GraphQLClient]:
    """A client of an app on ``shared_market``'s database, with its own rate limits."""
    async for gql in _client_for(shared_market.settings, MemoryRateLimiter(clock=FakeClock())):
        yield gql


GOOD_MARKET = {
    "question": "Will this market be valid eventually?",
    "description": "d",
    "resolutionCriteria": "r",
    "outcomes": ["Yes", "No"],
    "closesAt": "2099-01-01T00:00:00Z",
    "liquidity": "100.00",
}


async def test_readers_may_not_create_markets(
    on_shared_market: GraphQLClient, shared_market: SharedMarket
) -> None:
    reader = on_shared_market.as_user(shared_market.carl)
    body = await reader.post(
        CREATE,
        {
            "input": {
                "question": "Will readers be allowed to do this?",
                "description": "",
                "resolutionCriteria": "x",
                "outcomes": ["Yes", "No"],
                "closesAt": "2099-01-01T00:00:00Z",
                "liquidity": "100.00",
            }
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"outcomes": ["Only"]}, ["outcomes"], id="one-outcome"),
        pytest.param({"outcomes": [str(i) for i in range(11)]}, ["outcomes"], id="11-outcomes"),
        pytest.param(
            {"outcomes": ["Yes", "yes"]}, ["outcomes"], id="outcomes-differing-only-in-case"
        ),
        pytest.param({"liquidity": "9.99"}, ["liquidity"], id="liquidity-under-10"),
        pytest.param({"liquidity": "10.001"}, ["liquidity"], id="liquidity-under-a-cent"),
        pytest.param({"closesAt": "2001-01-01T00:00:00Z"}, ["closesAt"], id="closed-already"),
        pytest.param({"question": "Short?"}, ["question"], id="question-too-short"),
        pytest.param({"tagSlugs": ["no-such-tag"]}, ["tagSlugs"], id="unknown-tag"),
        # Longer than the column: was an internal error.
        pytest.param({"tagSlugs": ["t" * 121]}, ["tagSlugs"], id="tag-over-the-column"),
        pytest.param({"tagSlugs": ["t" * 100_000]}, ["tagSlugs"], id="tag-of-100000"),
        pytest.param(
            {"articleIds": [to_global_id("Article", 999)]}, ["articleIds"], id="unknown-article"
        ),
    ],
)
async def test_invalid_markets_are_refused_and_change_nothing(
    on_shared_market: GraphQLClient,
    shared_market: SharedMarket,
    changes: dict[str, Any],
    field: list[str],
) -> None:
    admin = on_shared_market.as_user(shared_market.admin)
    before = await _snapshot()
    data = await admin.data(CREATE, {"input": {**GOOD_MARKET, **changes}})
    assert data["createMarket"]["market"] is None
    assert [e["field"] for e in data["createMarket"]["errors"]] == [field], changes
    assert await _snapshot() == before


async def test_a_closing_time_past_year_9999_in_utc_is_refused_and_changes_nothing(
    on_shared_market: GraphQLClient, shared_market: SharedMarket
) -> None:
    """Found by tests/abuse/test_schema_fuzz.py: 9999-12-31T23:59:59-05:00 is 10000-01-01 in
    UTC, which has no datetime; storing it was an internal error."""
    admin = on_shared_market.as_user(shared_market.admin)
    before = await _snapshot()
    data = await admin.data(
        CREATE, {"input": {**GOOD_MARKET, "closesAt": "9999-12-31T23:59:59-05:00"}}
    )
    assert data["createMarket"] == {
        "market": None,
        "errors": [
            {"code": "VALIDATION", "field": ["closesAt"], "message": "closesAt is out of range."}
        ],
    }
    assert await _snapshot() == before


async def test_a_closing_time_is_stored_in_utc(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    data = await admin.data(
        CREATE, {"input": {**GOOD_MARKET, "closesAt": "9999-12-31T23:59:59.999999+05:00"}}
    )
    assert data["createMarket"]["errors"] == []
    market = await admin.data(
        "query($s: String!) { market(slug: $s) { closesAt status } }",
        {"s": data["createMarket"]["market"]["slug"]},
    )
    assert market["market"] == {"closesAt": "9999-12-31T18:59:59.999999+00:00", "status": "OPEN"}


async def test_markets_with_one_question_get_distinct_slugs(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    first = await admin.data(CREATE, {"input": GOOD_MARKET})
    second = await admin.data(CREATE, {"input": GOOD_MARKET})
    slugs = [first["createMarket"]["market"]["slug"], second["createMarket"]["market"]["slug"]]
    assert slugs == [
        "will-this-market-be-valid-eventually",
        "will-this-market-be-valid-eventually-2",
    ]


async def test_quote_then_buy_then_sell_exactly(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin)
    yes, no = (o["id"] for o in market["outcomes"])
    alice = await fresh_client.sign_up("alice")
    quote = (await alice.data(QUOTE, {"input": {"outcomeId": yes, "amount": "150.00"}}))["quote"]
    bought = (await alice.data(BUY, {"input": {"outcomeId": yes, "amount": "150.00"}}))["buyShares"]
    assert bought["errors"] == []
    trade = bought["trade"]
    assert trade["amount"] == "150.00" == quote["amount"]
    assert trade["shares"] == quote["shares"]
    assert trade["probabilityBefore"] == quote["probabilityBefore"] == 0.5
    assert trade["probabilityAfter"] == quote["probabilityAfter"]
    assert bought["balance"] == "850.00" == await _balance(alice)
    # The exact LMSR amount, rounded down to 4 places: b = 100/ln 2, p = 1/2.
    b = 100 / math.log(2)
    exact = b * math.log((math.exp(150 / b) - 1 + 0.5) / 0.5)
    assert Decimal(trade["shares"]) == Decimal(math.floor(exact * 10_000)) / 10_000
    assert quote["averagePrice"] == 150 / float(trade["shares"])
    assert bought["position"]["shares"] == trade["shares"]
    assert bought["position"]["costBasis"] == "150.00"
    assert bought["market"]["volume"] == "150.00" and bought["market"]["traderCount"] == 1
    probabilities = [o["probability"] for o in bought["market"]["outcomes"]]
    assert probabilities[0] == trade["probabilityAfter"] and math.isclose(sum(probabilities), 1)
    value = math.floor(float(trade["shares"]) * probabilities[0] * 100) / 100
    assert Decimal(bought["position"]["value"]) == Decimal(str(value)).quantize(Decimal("0.01"))

    # Sell a third: basis falls pro rata, proceeds rounded down to the cent.
    held = Decimal(trade["shares"])
    third = (held / 3).quantize(Decimal("0.0001"), rounding="ROUND_DOWN")
    sale_quote = (await alice.data(QUOTE, {"input": {"outcomeId": yes, "shares": str(third)}}))[
        "quote"
    ]
    sold = (await alice.data(SELL, {"input": {"outcomeId": yes, "shares": str(third)}}))[
        "sellShares"
    ]
    assert sold["errors"] == []
    assert sold["trade"]["shares"] == f"-{third}"
    assert sold["trade"]["amount"] == f"-{sale_quote['amount']}"
    proceeds = Decimal(sale_quote["amount"])
    assert Decimal(sold["balance"]) == Decimal("850.00") + proceeds
    units_held, units_sold = int(held * 10_000), int(third * 10_000)
    basis_left = 15000 - 15000 * units_sold // units_held
    assert sold["position"]["costBasis"] == f"{basis_left // 100}.{basis_left % 100:02d}"
    assert sold["position"]["shares"] == str(held - third)
    # Buying then selling everything never profits.
    rest = held - third
    sold_all = (await alice.data(SELL, {"input": {"outcomeId": yes, "shares": str(rest)}}))[
        "sellShares"
    ]
    assert sold_all["errors"] == []
    assert Decimal(sold_all["balance"]) <= Decimal("1000.00")
    assert sold_all["position"]["shares"] == "0.0000"
    assert sold_all["position"]["costBasis"] == "0.00"
    assert (await audit()).problems == []
    assert no  # the other outcome stays untouched
    assert (await models.Outcome.get(id=from_global_id(no)[1])).shares_units == 0


@pytest.mark.parametrize(
    ("query", "variables", "code", "field"),
    [
        pytest.param(
            BUY,
            lambda m: {"outcomeId": m.yes, "amount": "0.00"},
            "VALIDATION",
            ["amount"],
            id="buy-for-nothing",
        ),
        pytest.param(
            BUY,
            lambda m: {"outcomeId": m.yes, "amount": "-5.00"},
            "VALIDATION",
            ["amount"],
            id="buy-for-less-than-nothing",
        ),
        pytest.param(
            BUY,
            lambda m: {"outcomeId": m.yes, "amount": "1.001"},
            "VALIDATION",
            ["amount"],
            id="buy-for-part-of-a-cent",
        ),
        pytest.param(
            BUY,
            lambda m: {"outcomeId": m.yes, "amount": "1000.01"},
            "INSUFFICIENT_FUNDS",
            ["amount"],
            id="buy-beyond-the-balance",
        ),
        pytest.param(
            BUY,
            lambda m: {"outcomeId": to_global_id("Outcome", 999), "amount": "1.00"},
            "NOT_FOUND",
            ["outcomeId"],
            id="buy-a-missing-outcome",
        ),
        pytest.param(
            BUY,
            lambda m: {"outcomeId": m.yes, "amount": "10.00", "minShares": "1000"},
            "SLIPPAGE_EXCEEDED",
            ["minShares"],
            id="buy-under-min-shares",
        ),
        pytest.param(
            BUY,
            lambda m: {"outcomeId": m.yes, "amount": "11.00", "idempotencyKey": "k1"},
            "IDEMPOTENCY_CONFLICT",
            ["idempotencyKey"],
            id="buy-reusing-a-key",
        ),
        pytest.param(
            SELL,
            lambda m: {"outcomeId": m.yes, "shares": "1000"},
            "INSUFFICIENT_SHARES",
            ["shares"],
            id="sell-more-than-held",
        ),
        pytest.param(
            SELL,
            lambda m: {"outcomeId": m.yes, "shares": "0.00001"},
            "VALIDATION",
            ["shares"],
            id="sell-part-of-a-share-unit",
        ),
        pytest.param(
            SELL,
            lambda m: {"outcomeId": m.yes, "shares": "1", "minAmount": "999.00"},
            "SLIPPAGE_EXCEEDED",
            ["minAmount"],
            id="sell-under-min-amount",
        ),
        pytest.param(
            SELL,
            lambda m: {"outcomeId": m.no, "shares": "1"},
            "INSUFFICIENT_SHARES",
            ["shares"],
            id="sell-an-outcome-not-held",
        ),
    ],
)
async def test_refusals_move_nothing(
    on_shared_market: GraphQLClient,
    shared_market: SharedMarket,
    query: str,
    variables: Callable[[SharedMarket], dict[str, Any]],
    code: str,
    field: list[str],
) -> None:
    bob = on_shared_market.as_user(shared_market.bob)
    before = await _snapshot()
    data = await bob.data(query, {"input": variables(shared_market)})
    payload = next(iter(data.values()))
    assert payload["trade"] is None and payload["balance"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], variables
    assert await _snapshot() == before


# Bad scalars and IDs are request errors, not refusals.
@pytest.mark.parametrize(
    ("outcome", "amount"),
    [
        ("yes", "1e3"),
        ("yes", "NaN"),
        ("yes", "Infinity"),
        ("yes", "12.5.0"),
        ("garbage", "1.00"),
    ],
    ids=["amount-1e3", "amount-NaN", "amount-Infinity", "amount-12.5.0", "outcome-id-garbage"],
)
async def test_bad_scalars_and_ids_are_request_errors_and_move_nothing(
    on_shared_market: GraphQLClient, shared_market: SharedMarket, outcome: str, amount: str
) -> None:
    bob = on_shared_market.as_user(shared_market.bob)
    before = await _snapshot()
    outcome_id = shared_market.yes if outcome == "yes" else outcome
    body = await bob.post(BUY, {"input": {"outcomeId": outcome_id, "amount": amount}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", amount
    assert await _snapshot() == before


async def test_trading_needs_a_session(
    on_shared_market: GraphQLClient, shared_market: SharedMarket
) -> None:
    before = await _snapshot()
    body = await on_shared_market.post(
        BUY, {"input": {"outcomeId": shared_market.yes, "amount": "1.00"}}
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _snapshot() == before


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        pytest.param(
            lambda m: {"outcomeId": m.yes, "amount": "2000.00"},
            "INSUFFICIENT_FUNDS",
            id="beyond-the-balance",
        ),
        pytest.param(
            lambda m: {"outcomeId": m.yes, "shares": "5"},
            "INSUFFICIENT_SHARES",
            id="selling-shares-not-held",
        ),
        pytest.param(
            lambda m: {"outcomeId": m.yes, "amount": "1.00", "shares": "1"},
            "VALIDATION",
            id="amount-and-shares",
        ),
        pytest.param(lambda m: {"outcomeId": m.yes}, "VALIDATION", id="neither"),
        pytest.param(
            lambda m: {"outcomeId": to_global_id("Outcome", 999), "amount": "1.00"},
            "NOT_FOUND",
            id="missing-outcome",
        ),
    ],
)
async def test_quote_refusals_are_coded_errors(
    on_shared_market: GraphQLClient,
    shared_market: SharedMarket,
    variables: Callable[[SharedMarket], dict[str, Any]],
    code: str,
) -> None:
    carl = on_shared_market.as_user(shared_market.carl)
    body = await carl.post(QUOTE, {"input": variables(shared_market)})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code, variables


async def test_anonymous_quotes_price_the_trade_without_a_wallet(
    on_shared_market: GraphQLClient, shared_market: SharedMarket
) -> None:
    data = await on_shared_market.data(
        QUOTE, {"input": {"outcomeId": shared_market.yes, "amount": "2000.00"}}
    )
    assert data["quote"]["amount"] == "2000.00"


async def test_idempotent_retries_return_the_first_trade(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin)
    yes = market["outcomes"][0]["id"]
    dana = await fresh_client.sign_up("dana")
    variables = {"input": {"outcomeId": yes, "amount": "25.00", "idempotencyKey": "order-1"}}
    first = (await dana.data(BUY, variables))["buyShares"]
    await dana.data(BUY, {"input": {"outcomeId": yes, "amount": "5.00"}})
    trades = await models.Trade.all().count()
    again = (await dana.data(BUY, variables))["buyShares"]
    assert again["errors"] == []
    assert again["trade"]["id"] == first["trade"]["id"]
    assert again["balance"] == first["balance"] == "975.00"
    assert await models.Trade.all().count() == trades
    assert await _balance(dana) == "970.00"
    # Concurrent retries of one key: one trade.
    burst = {"input": {"outcomeId": yes, "amount": "7.00", "idempotencyKey": "order-2"}}
    results = await asyncio.gather(*(dana.data(BUY, burst) for _ in range(8)))
    assert {r["buyShares"]["trade"]["id"] for r in results} != {None}
    assert len({r["buyShares"]["trade"]["id"] for r in results}) == 1
    assert [r["buyShares"]["errors"] for r in results] == [[]] * 8
    assert await _balance(dana) == "963.00"
    # Keys are per user.
    erin = await fresh_client.sign_up("erin")
    other = (await erin.data(BUY, variables))["buyShares"]
    assert other["errors"] == [] and other["trade"]["id"] != first["trade"]["id"]


async def test_twenty_concurrent_buys_from_one_wallet(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin, "1000.00")
    yes = market["outcomes"][0]["id"]
    fay = await fresh_client.sign_up("fay")
    results = await asyncio.gather(
        *(fay.data(BUY, {"input": {"outcomeId": yes, "amount": "150.00"}}) for _ in range(20))
    )
    codes = sorted(
        r["buyShares"]["errors"][0]["code"] if r["buyShares"]["errors"] else "OK" for r in results
    )
    assert codes == ["INSUFFICIENT_FUNDS"] * 14 + ["OK"] * 6
    assert await _balance(fay) == "100.00"
    assert await models.Trade.filter(user__username="fay").count() == 6
    assert (await audit()).problems == []


async def test_many_traders_on_one_market_lose_or_double_nothing(
    fresh_client: GraphQLClient,
) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin, "500.00", ["A", "B", "C"])
    outcome_ids = [o["id"] for o in market["outcomes"]]
    traders = [await fresh_client.sign_up(f"trader{i}") for i in range(8)]

    async def run(i: int) -> None:
        user = traders[i]
        for n in range(6):
            outcome = outcome_ids[(i + n) % 3]
            data = await user.data(BUY, {"input": {"outcomeId": outcome, "amount": f"{5 + n}.25"}})
            assert data["buyShares"]["errors"] == []
        data = await user.data(
            "{ me { positions(first: 10) { nodes { shares outcome { id } } } } }"
        )
        first = data["me"]["positions"]["nodes"][0]
        half = (Decimal(first["shares"]) / 2).quantize(Decimal("0.0001"), rounding="ROUND_DOWN")
        sold = await user.data(
            SELL, {"input": {"outcomeId": first["outcome"]["id"], "shares": str(half)}}
        )
        assert sold["sellShares"]["errors"] == []

    await asyncio.gather(*(run(i) for i in range(8)))
    report = await audit()
    assert report.problems == []
    market_pk = from_global_id(market["id"])[1]
    trades = await models.Trade.filter(market_id=market_pk)
    assert len(trades) == 8 * 7
    row = await models.Market.get(id=market_pk)
    assert row.volume_cents == sum(abs(t.amount_cents) for t in trades)
    assert row.trader_count == 8
    for outcome in await models.Outcome.filter(market_id=market_pk):
        held = sum(p.shares_units for p in await models.Position.filter(outcome_id=outcome.id))
        assert outcome.shares_units == held
    maker = await models.LedgerAccount.get(market_id=market_pk)
    assert maker.balance_cents == 50000 + sum(t.amount_cents for t in trades)


async def test_resolution_pays_one_credit_per_winning_share(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin)
    yes, no = (o["id"] for o in market["outcomes"])
    gil = await fresh_client.sign_up("gil")
    hana = await fresh_client.sign_up("hana")
    g = (await gil.data(BUY, {"input": {"outcomeId": yes, "amount": "40.00"}}))["buyShares"]
    await hana.data(BUY, {"input": {"outcomeId": no, "amount": "70.00"}})
    units = int(Decimal(g["trade"]["shares"]) * 10_000)
    body = await gil.post(RESOLVE, {"m": market["id"], "o": yes})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    resolved = (await admin.data(RESOLVE, {"m": market["id"], "o": yes}))["resolveMarket"]
    assert resolved["errors"] == []
    assert resolved["market"]["status"] == "RESOLVED"
    assert resolved["market"]["resolvedOutcome"] == {"id": yes}
    assert [o["probability"] for o in resolved["market"]["outcomes"]] == [1.0, 0.0]
    payout = units // 100
    assert await _balance(gil) == f"{(96000 + payout) // 100}.{(96000 + payout) % 100:02d}"
    assert await _balance(hana) == "930.00"
    positions = (await gil.data("{ me { positions { nodes { value profit costBasis } } } }"))["me"][
        "positions"
    ]["nodes"]
    assert positions == [
        {
            "value": f"{payout // 100}.{payout % 100:02d}",
            "profit": f"{(payout - 4000) // 100}.{(payout - 4000) % 100:02d}",
            "costBasis": "40.00",
        }
    ]
    maker = await models.LedgerAccount.get(market_id=from_global_id(market["id"])[1])
    assert maker.balance_cents == 0
    assert (await audit()).problems == []
    # Repeating the same settlement changes nothing; any other is MARKET_NOT_OPEN.
    before = await _snapshot()
    again = (await admin.data(RESOLVE, {"m": market["id"], "o": yes}))["resolveMarket"]
    assert again["errors"] == [] and again["market"]["status"] == "RESOLVED"
    assert await _snapshot() == before
    # Steps of this settlement, not cases: each needs the market resolved above.
    for query, variables in [
        (RESOLVE, {"m": market["id"], "o": no}),
        (CANCEL, {"m": market["id"]}),
    ]:
        data = await admin.data(query, variables)
        assert next(iter(data.values()))["errors"] == [{"code": "MARKET_NOT_OPEN"}]
    data = await gil.data(BUY, {"input": {"outcomeId": yes, "amount": "1.00"}})
    assert data["buyShares"]["errors"][0]["code"] == "MARKET_NOT_OPEN"
    assert await _snapshot() == before
    history = await fresh_client.data(
        "query($s: String!) { market(slug: $s) { priceHistory(interval: MINUTE) { probabilities } } }",
        {"s": market["slug"]},
    )
    assert history["market"]["priceHistory"][-1]["probabilities"] == [1.0, 0.0]


async def test_cancellation_refunds_net_cost_and_winners_keep_gains(
    fresh_client: GraphQLClient,
) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin, "50.00")
    yes = market["outcomes"][0]["id"]
    early = await fresh_client.sign_up("early")
    late = await fresh_client.sign_up("late")
    bought = (await early.data(BUY, {"input": {"outcomeId": yes, "amount": "20.00"}}))["buyShares"]
    await late.data(BUY, {"input": {"outcomeId": yes, "amount": "200.00"}})
    sold = (
        await early.data(SELL, {"input": {"outcomeId": yes, "shares": bought["trade"]["shares"]}})
    )["sellShares"]
    gain = Decimal(sold["balance"]) - Decimal("1000.00")
    assert gain > 0  # the early trader sold into the late one's demand
    cancelled = (await admin.data(CANCEL, {"m": market["id"]}))["cancelMarket"]
    assert cancelled == {"market": {"status": "CANCELLED"}, "errors": []}
    assert await _balance(late) == "1000.00"
    assert Decimal(await _balance(early)) == Decimal("1000.00") + gain
    assert (await audit()).problems == []
    before = await _snapshot()
    again = (await admin.data(CANCEL, {"m": market["id"]}))["cancelMarket"]
    assert again["errors"] == []
    assert await _snapshot() == before
    data = await admin.data(RESOLVE, {"m": market["id"], "o": yes})
    assert data["resolveMarket"]["errors"] == [{"code": "MARKET_NOT_OPEN"}]
    late_positions = (await late.data("{ me { positions { nodes { value profit } } } }"))["me"]
    assert late_positions["positions"]["nodes"] == [{"value": "200.00", "profit": "0.00"}]


async def test_closed_markets_refuse_trades(fresh_client: GraphQLClient) -> None:
    admin = await _admin(fresh_client)
    market = await _new_market(admin)
    yes = market["outcomes"][0]["id"]
    ivan = await fresh_client.sign_up("ivan")
    await models.Market.filter(id=from_global_id(market["id"])[1]).update(
        closes_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    before = await _snapshot()
    data = await ivan.data(BUY, {"input": {"outcomeId": yes, "amount": "1.00"}})
    assert data["buyShares"]["errors"][0]["code"] == "MARKET_NOT_OPEN"
    assert await _snapshot() == before
    status = await fresh_client.data(
        "query($s: String!) { market(slug: $s) { status } }", {"s": market["slug"]}
    )
    assert status["market"]["status"] == "CLOSED"
    resolved = (await admin.data(RESOLVE, {"m": market["id"], "o": yes}))["resolveMarket"]
    assert resolved["market"]["status"] == "RESOLVED"


async def test_read_side_positions_trades_history_leaderboard(client: GraphQLClient) -> None:
    data = await client.data(
        """{ markets(first: 20, orderBy: VOLUME) { nodes { slug volume traderCount
               trades(first: 3) { totalCount nodes { amount shares user { username } } }
               priceHistory(interval: DAY) { at probabilities } outcomes { probability } } }
             leaderboard(first: 5) { rank profit volume user { username
               trades(first: 1) { totalCount } positions(first: 50) { nodes { value profit } } } }
             stats { traderCount volume } }"""
    )
    top = data["markets"]["nodes"][0]
    row = await models.Market.get(slug=top["slug"])
    trades = await models.Trade.filter(market_id=row.id)
    assert top["trades"]["totalCount"] == len(trades)
    assert Decimal(top["volume"]) * 100 == sum(abs(t.amount_cents) for t in trades)
    assert top["traderCount"] == len({t.user_id for t in trades})
    history = top["priceHistory"]
    assert 1 <= len(history) <= 1000
    assert history[-1]["probabilities"] == [o["probability"] for o in top["outcomes"]]
    assert all(math.isclose(sum(p["probabilities"]), 1.0) for p in history)
    board = data["leaderboard"]
    assert [e["rank"] for e in board] == list(range(1, len(board) + 1))
    profits = [Decimal(e["profit"]) for e in board]
    assert profits == sorted(profits, reverse=True)
    for entry in board:
        positions = entry["user"]["positions"]["nodes"]
        assert sum(Decimal(p["profit"]) for p in positions) == Decimal(entry["profit"])
    body = await client.post("{ leaderboard(first: 101) { rank } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_price_history_since_a_time_without_offset_is_utc(client: GraphQLClient) -> None:
    """Found by tests/abuse/test_schema_fuzz.py: ``since: "0001-01-01T00:00:00"`` was an
    internal error (``datetime.timestamp`` of an offset-less time in year 1 fails) and an
    offset-less time was read in the server's zone."""
    query = """query($since: DateTime) { markets(first: 5, orderBy: VOLUME) { nodes {
                 priceHistory(since: $since, interval: MINUTE) { at } } } }"""
    whole = await client.data(query, {"since": None})
    points = [p["at"] for p in whole["markets"]["nodes"][0]["priceHistory"]]
    assert len(points) >= 3
    for since in ("0001-01-01T00:00:00", "0001-01-01T00:00:00+05:00", "1970-01-01T00:00:00"):
        assert await client.data(query, {"since": since}) == whole, since
    middle = datetime.fromisoformat(points[len(points) // 2])
    naive = middle.replace(tzinfo=None).isoformat()
    later = await client.data(query, {"since": naive})
    assert later == await client.data(query, {"since": middle.isoformat()})
    # The demo's points are minutes apart: each is its own MINUTE bucket.
    assert [p["at"] for p in later["markets"]["nodes"][0]["priceHistory"]] == [
        at for at in points if datetime.fromisoformat(at) >= middle
    ]


async def test_price_history_of_a_market_list_is_one_statement(client: GraphQLClient) -> None:
    from tests.conftest import SqlCounter

    query = """query($n: Int) { markets(first: $n, orderBy: NEWEST) { nodes {
                 priceHistory(interval: HOUR) { at probabilities } } } }"""
    counts, histories = [], []
    for n in (2, 13):
        with SqlCounter().counting() as counter:
            data = await client.data(query, {"n": n})
        counts.append(len(counter.statements))
        histories.append([m["priceHistory"] for m in data["markets"]["nodes"]])
    assert counts[0] == counts[1], counts
    assert histories[1][:2] == histories[0]
    for market, points in zip(
        await models.Market.all().order_by("-created_at", "-id"), histories[1], strict=True
    ):
        trades = await models.Trade.filter(market_id=market.id).count()
        assert 1 <= len(points) <= trades + 1
