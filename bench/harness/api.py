"""The client side of the GraphQL API: request bodies, global IDs, untimed set-up calls.

Set-up goes through the API as a client would (log in, sign up, createMarket as the demo admin),
so it works on any version of the app; any error or refusal during set-up is fatal.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"  # demo article
HEADERS = {"content-type": "application/json", "accept": "application/json"}
PASSWORD = "bench-password-1"  # of the accounts the benchmarks sign up
ADMIN = ("admin", "demo-password")  # the demo data's admin
READER = ("alice", "demo-password")  # the demo data's reader

LOG_IN = """
mutation LogIn($input: LogInInput!) {
  logIn(input: $input) { token user { role } errors { code message } }
}
"""
SIGN_UP = """
mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) { token user { id } errors { code message } }
}
"""
CREATE_MARKET = """
mutation CreateMarket($input: CreateMarketInput!) {
  createMarket(input: $input) { market { id slug outcomes { id label } } errors { code message } }
}
"""


def body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def authorized(token: str) -> dict[str, str]:
    return {**HEADERS, "authorization": f"Bearer {token}"}


def global_id_pk(global_id: str) -> tuple[str, int]:
    """(type name, primary key) of a Relay global ID: base64 of "Type:pk"."""
    type_name, _, pk = base64.b64decode(global_id).decode().partition(":")
    return type_name, int(pk)


async def graphql(
    client: httpx.AsyncClient,
    base_url: str,
    query: str,
    variables: dict[str, Any],
    field_name: str,
    token: str | None = None,
) -> dict[str, Any]:
    """Run one set-up operation and return its ``field_name``; any error or refusal is fatal."""
    headers = authorized(token) if token else HEADERS
    response = await client.post(
        base_url + "/graphql", content=body(query, variables), headers=headers
    )
    if response.status_code != 200:
        raise RuntimeError(f"{field_name}: HTTP {response.status_code}: {response.text[:500]}")
    payload = response.json()
    result = (payload.get("data") or {}).get(field_name)
    if payload.get("errors") or not result or result.get("errors"):
        raise RuntimeError(f"{field_name} failed: {json.dumps(payload)[:1000]}")
    assert isinstance(result, dict)
    return result


async def log_in(client: httpx.AsyncClient, base_url: str, who: tuple[str, str]) -> str:
    """A session token for the demo account ``who`` (username, password)."""
    variables = {"input": {"username": who[0], "password": who[1]}}
    return str((await graphql(client, base_url, LOG_IN, variables, "logIn"))["token"])


@dataclass(frozen=True)
class Account:
    username: str
    token: str
    user_id: str  # global ID

    @property
    def headers(self) -> dict[str, str]:
        return authorized(self.token)


async def sign_up(
    client: httpx.AsyncClient, base_url: str, username: str, display_name: str
) -> Account:
    variables = {"input": {"username": username, "password": PASSWORD, "displayName": display_name}}
    result = await graphql(client, base_url, SIGN_UP, variables, "signUp")
    return Account(username, str(result["token"]), str(result["user"]["id"]))


@dataclass(frozen=True)
class Market:
    id: str  # global ID
    slug: str
    outcome_ids: list[str]


async def bounded(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run ``jobs`` with at most ``limit`` at a time; their results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def create_markets(
    client: httpx.AsyncClient, base_url: str, count: int, creator: str, tag: str
) -> list[Market]:
    """``count`` two-outcome markets (liquidity 1000.00, closing in a week) made by the admin."""
    admin = await log_in(client, base_url, ADMIN)
    closes_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7 * 86400))

    def job(i: int) -> Callable[[], Awaitable[dict[str, Any]]]:
        variables = {
            "input": {
                "question": f"Benchmark {tag} market {i}: will the load test finish?",
                "description": f"Created by {creator}.",
                "resolutionCriteria": "Never resolved: a benchmark market.",
                "outcomes": ["Yes", "No"],
                "closesAt": closes_at,
                "liquidity": "1000.00",
            }
        }
        return lambda: graphql(client, base_url, CREATE_MARKET, variables, "createMarket", admin)

    created = await bounded([job(i) for i in range(count)], 4)
    return [
        Market(
            str(r["market"]["id"]),
            str(r["market"]["slug"]),
            [str(o["id"]) for o in r["market"]["outcomes"]],
        )
        for r in created
    ]


def error_text(error: Any) -> str:
    """A GraphQL error as "CODE: message"."""
    code = (error.get("extensions") or {}).get("code", "?")
    return f"{code}: {str(error.get('message'))[:200]}"
