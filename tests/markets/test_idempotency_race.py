"""Retries of one idempotency key sent while the first request still runs (over HTTP).

A client that times out and resends must get the first trade back, never a refusal that only
happened because its own first request had already spent the money or the shares. Each race is
run several times (a new account each round) so that a lucky interleaving can't pass it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from api.core.node import from_global_id
from db import models
from markets.audit import audit
from tests.conftest import GraphQLClient
from tests.markets.test_trading import BUY, QUOTE, SELL, _admin, _balance, _new_market

KEY = "retry-1"
ROUNDS = 3


async def _race(
    user: GraphQLClient, query: str, inputs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send every request at once; the payloads, in the order of ``inputs``."""
    answers = await asyncio.gather(*(user.data(query, {"input": i}) for i in inputs))
    return [next(iter(a.values())) for a in answers]


def _codes(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def _key_trades(username: str) -> list[int]:
    """The trade ids stored under KEY for the user."""
    return [
        k.trade_id for k in await models.IdempotencyKey.filter(user__username=username, key=KEY)
    ]


async def _assert_one_trade(username: str, payload: dict[str, Any], trades: int = 1) -> None:
    """``payload``'s trade is the key's only one, and the user made ``trades`` trades in all."""
    trade_pk = from_global_id(payload["trade"]["id"], "Trade")[1]
    assert await _key_trades(username) == [trade_pk]
    assert await models.Trade.filter(user__username=username).count() == trades
    assert (await audit()).problems == []


@pytest.mark.parametrize("n", [2, 10])
async def test_concurrent_retries_of_a_buy_return_the_first_trade(
    fresh_client: GraphQLClient, n: int
) -> None:
    """n identical keyed buys of 600.00 from a 1000.00 wallet: one trade, n identical answers."""
    admin = await _admin(fresh_client)
    yes = (await _new_market(admin, "1000.00"))["outcomes"][0]["id"]
    request = {"outcomeId": yes, "amount": "600.00", "idempotencyKey": KEY}
    for round_ in range(ROUNDS):
        name = f"buyer{n}x{round_}"
        user = await fresh_client.sign_up(name)
        answers = await _race(user, BUY, [request] * n)
        assert [_codes(a) for a in answers] == [[]] * n
        assert {a["balance"] for a in answers} == {"400.00"}
        # Nothing else trades on this market meanwhile, so a replay sent later answers exactly
        # what each concurrent request did: the same trade, position, market and balance.
        later = (await user.data(BUY, {"input": request}))["buyShares"]
        assert answers == [later] * n
        assert await _balance(user) == "400.00"
        await _assert_one_trade(name, later)


async def test_concurrent_retries_beat_the_slippage_guard(fresh_client: GraphQLClient) -> None:
    """With minShares at the quote, the retries would be refused as SLIPPAGE_EXCEEDED if they
    were planned after the first trade moved the price: the key must be checked first."""
    admin = await _admin(fresh_client)
    yes = (await _new_market(admin, "100.00"))["outcomes"][0]["id"]
    for round_ in range(ROUNDS):
        name = f"guarded{round_}"
        user = await fresh_client.sign_up(name)
        quote = await user.data(QUOTE, {"input": {"outcomeId": yes, "amount": "50.00"}})
        request = {
            "outcomeId": yes,
            "amount": "50.00",
            "minShares": quote["quote"]["shares"],
            "idempotencyKey": KEY,
        }
        answers = await _race(user, BUY, [request] * 10)
        assert [_codes(a) for a in answers] == [[]] * 10
        assert {a["trade"]["shares"] for a in answers} == {quote["quote"]["shares"]}
        later = (await user.data(BUY, {"input": request}))["buyShares"]
        assert answers == [later] * 10
        assert await _balance(user) == "950.00"
        await _assert_one_trade(name, later)


@pytest.mark.parametrize("n", [2, 10])
async def test_concurrent_retries_of_a_sale_return_the_first_trade(
    fresh_client: GraphQLClient, n: int
) -> None:
    """n identical keyed sales of everything held: one sale (the rest would be short of shares)."""
    admin = await _admin(fresh_client)
    yes = (await _new_market(admin, "1000.00"))["outcomes"][0]["id"]
    for round_ in range(ROUNDS):
        name = f"seller{n}x{round_}"
        user = await fresh_client.sign_up(name)
        bought = await user.data(BUY, {"input": {"outcomeId": yes, "amount": "600.00"}})
        shares = bought["buyShares"]["trade"]["shares"]
        request = {"outcomeId": yes, "shares": shares, "idempotencyKey": KEY}
        answers = await _race(user, SELL, [request] * n)
        assert [_codes(a) for a in answers] == [[]] * n
        later = (await user.data(SELL, {"input": request}))["sellShares"]
        assert answers == [later] * n
        assert later["trade"]["shares"] == f"-{shares}"
        assert later["position"]["shares"] == "0.0000"
        proceeds = -Decimal(later["trade"]["amount"])
        assert Decimal(later["balance"]) == Decimal("400.00") + proceeds
        assert await _balance(user) == later["balance"]
        await _assert_one_trade(name, later, trades=2)


@pytest.mark.parametrize("n", [2, 10])
async def test_concurrent_different_requests_with_one_key_conflict(
    fresh_client: GraphQLClient, n: int
) -> None:
    """One key on two different requests at once (on two markets, so that on PostgreSQL only
    the wallet is shared): whichever runs first trades; every request like it gets its replay,
    every other one IDEMPOTENCY_CONFLICT, never the INSUFFICIENT_FUNDS it would meet if it ran."""
    admin = await _admin(fresh_client)
    first = (await _new_market(admin, "1000.00"))["outcomes"][0]["id"]
    second = (await _new_market(admin, "1000.00"))["outcomes"][0]["id"]
    inputs = [
        {"outcomeId": first, "amount": "600.00", "idempotencyKey": KEY},
        {"outcomeId": second, "amount": "700.00", "idempotencyKey": KEY},
    ] * (n // 2)
    for round_ in range(ROUNDS):
        name = f"mixed{n}x{round_}"
        user = await fresh_client.sign_up(name)
        answers = await _race(user, BUY, inputs)
        winners = [i for i, a in zip(inputs, answers, strict=True) if a["errors"] == []]
        assert winners, answers
        won = winners[0]
        later = (await user.data(BUY, {"input": won}))["buyShares"]
        for request, answer in zip(inputs, answers, strict=True):
            if request == won:
                assert answer == later
            else:
                assert _codes(answer) == [("IDEMPOTENCY_CONFLICT", ["idempotencyKey"])]
                assert answer["trade"] is None and answer["balance"] is None
        spent = Decimal(str(won["amount"]))
        assert await _balance(user) == str(Decimal("1000.00") - spent)
        await _assert_one_trade(name, later)


async def test_a_refused_request_claims_no_key(fresh_client: GraphQLClient) -> None:
    """A refusal stores nothing, even while a good request with its key is running: the good
    one always trades; the refused one is refused for itself, or conflicts if it came second."""
    admin = await _admin(fresh_client)
    yes = (await _new_market(admin, "1000.00"))["outcomes"][0]["id"]
    too_much = {"outcomeId": yes, "amount": "1200.00", "idempotencyKey": KEY}
    good = {"outcomeId": yes, "amount": "600.00", "idempotencyKey": KEY}
    for round_ in range(ROUNDS):
        name = f"refused{round_}"
        user = await fresh_client.sign_up(name)
        refused, traded = await _race(user, BUY, [too_much, good])
        assert _codes(traded) == [] and traded["balance"] == "400.00"
        assert _codes(refused) in (
            [("INSUFFICIENT_FUNDS", ["amount"])],
            [("IDEMPOTENCY_CONFLICT", ["idempotencyKey"])],
        )
        await _assert_one_trade(name, traded)
    # One after the other: the refusal first leaves the key free for the next request.
    user = await fresh_client.sign_up("refusedfirst")
    refused = (await user.data(BUY, {"input": too_much}))["buyShares"]
    assert _codes(refused) == [("INSUFFICIENT_FUNDS", ["amount"])]
    assert await _key_trades("refusedfirst") == []
    traded = (await user.data(BUY, {"input": good}))["buyShares"]
    assert _codes(traded) == [] and traded["balance"] == "400.00"
    await _assert_one_trade("refusedfirst", traded)
