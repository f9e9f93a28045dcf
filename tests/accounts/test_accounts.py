"""Accounts over HTTP: sign-up, log-in, sessions, revocation, permissions, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.core.node import to_global_id
from db import models
from db.sql import execute
from tests.conftest import SIGN_UP, FakeClock, GraphQLClient

ME = "{ me { id username displayName initials role balance } }"
LOG_IN = """
mutation($input: LogInInput!) {
  logIn(input: $input) { token expiresAt user { username } errors { code message field retryAfterSeconds } }
}
"""
LOG_OUT = "mutation { logOut }"
CHANGE_PASSWORD = """
mutation($input: ChangePasswordInput!) {
  changePassword(input: $input) { token expiresAt user { username } errors { code field } }
}
"""


async def _counts() -> tuple[int, int, int, int]:
    return (
        await models.User.all().count(),
        await models.Session.all().count(),
        await models.LedgerEntry.all().count(),
        await models.LedgerAccount.all().count(),
    )


async def test_sign_up_logs_in_with_1000_credits(fresh_client: GraphQLClient) -> None:
    data = await fresh_client.data(
        SIGN_UP,
        {
            "input": {
                "username": "  Carol_1 ",
                "password": "correct horse",
                "displayName": " Carol  Ng ",
            }
        },
    )
    payload = data["signUp"]
    assert payload["errors"] == []
    assert payload["user"]["username"] == "carol_1"
    assert payload["user"]["displayName"] == "Carol Ng"
    assert payload["user"]["role"] == "READER"
    assert len(payload["token"]) >= 22  # ≥ 128 bits, base64url
    expires = datetime.fromisoformat(payload["expiresAt"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    me = await fresh_client.as_user(payload["token"]).data(ME)
    assert me["me"]["username"] == "carol_1"
    assert me["me"]["initials"] == "CN"
    assert me["me"]["balance"] == "1000.00"
    # The grant is a balanced ledger movement from the issuer.
    entries = await models.LedgerEntry.all()
    assert sorted(e.amount_cents for e in entries) == [-100000, 100000]
    issuer = await models.LedgerAccount.get(kind="ISSUER")
    assert issuer.balance_cents == -100000
    # The token is stored only as a hash.
    session = await models.Session.get()
    assert payload["token"] not in session.token_hash


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"username": "ab"}, "VALIDATION", ["username"]),
        ({"username": "has space"}, "VALIDATION", ["username"]),
        ({"username": "x" * 33}, "VALIDATION", ["username"]),
        ({"password": "short"}, "VALIDATION", ["password"]),
        ({"password": "p" * 257}, "VALIDATION", ["password"]),
        ({"displayName": "   "}, "VALIDATION", ["displayName"]),
        ({"displayName": "bad\u0007name"}, "VALIDATION", ["displayName"]),
    ],
)
async def test_bad_sign_ups_are_refused_and_change_nothing(
    fresh_client: GraphQLClient, changes: dict[str, str], code: str, field: list[str]
) -> None:
    before = await _counts()
    good = {"username": "dave", "password": "long enough", "displayName": "Dave"}
    data = await fresh_client.data(SIGN_UP, {"input": {**good, **changes}})
    payload = data["signUp"]
    assert payload["token"] is None and payload["user"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await _counts() == before


async def test_duplicate_username_is_taken_case_insensitively(fresh_client: GraphQLClient) -> None:
    await fresh_client.sign_up("erin")
    before = await _counts()
    data = await fresh_client.data(
        SIGN_UP, {"input": {"username": "ERIN", "password": "another pass", "displayName": "E"}}
    )
    assert [e["code"] for e in data["signUp"]["errors"]] == ["USERNAME_TAKEN"]
    assert data["signUp"]["errors"][0]["field"] == ["username"]
    assert await _counts() == before


async def test_log_in_ignores_the_case_of_the_username(fresh_client: GraphQLClient) -> None:
    await fresh_client.sign_up("fay", password="fay's password")
    data = await fresh_client.data(
        LOG_IN, {"input": {"username": "FAY", "password": "fay's password"}}
    )
    assert data["logIn"]["errors"] == []
    assert data["logIn"]["user"] == {"username": "fay"}


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("fay", "wrong password"),
        ("nobody", "fay's password"),
        ("fay", "x" * 100_000),  # refused without hashing 100 kB
    ],
    ids=["wrong-password", "unknown-user", "100-kB-password"],
)
async def test_log_in_wrong_password_and_unknown_user(
    fresh_client: GraphQLClient, username: str, password: str
) -> None:
    await fresh_client.sign_up("fay", password="fay's password")
    data = await fresh_client.data(LOG_IN, {"input": {"username": username, "password": password}})
    assert data["logIn"]["token"] is None
    assert [e["code"] for e in data["logIn"]["errors"]] == ["INVALID_CREDENTIALS"]


async def test_anonymous_and_bad_tokens(fresh_client: GraphQLClient) -> None:
    assert await fresh_client.data(ME) == {"me": None}
    response = await fresh_client.http.post(
        "/graphql", json={"query": ME}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.json() == {"data": {"me": None}}
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = await fresh_client.post(LOG_OUT)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_expired_sessions_stop_working(fresh_client: GraphQLClient) -> None:
    user = await fresh_client.sign_up("gus")
    assert (await user.data(ME))["me"]["username"] == "gus"
    await execute("UPDATE sessions SET expires_at = ?", (datetime.now(UTC) - timedelta(seconds=1),))
    assert await user.data(ME) == {"me": None}


async def test_log_out_revokes_only_the_token_in_use(fresh_client: GraphQLClient) -> None:
    first = await fresh_client.sign_up("hal", password="hal password")
    second = await fresh_client.log_in("hal", "hal password")
    assert await first.data(LOG_OUT) == {"logOut": True}
    assert await first.data(ME) == {"me": None}
    assert (await second.data(ME))["me"]["username"] == "hal"
    body = await first.post(LOG_OUT)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_change_password_ends_other_sessions(fresh_client: GraphQLClient) -> None:
    current = await fresh_client.sign_up("ivy", password="old password")
    other = await fresh_client.log_in("ivy", "old password")
    before = await _counts()
    wrong = await current.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": "not it", "newPassword": "new password"}},
    )
    assert [e["code"] for e in wrong["changePassword"]["errors"]] == ["INVALID_CREDENTIALS"]
    weak = await current.data(
        CHANGE_PASSWORD, {"input": {"currentPassword": "old password", "newPassword": "x"}}
    )
    assert [(e["code"], e["field"]) for e in weak["changePassword"]["errors"]] == [
        ("VALIDATION", ["newPassword"])
    ]
    assert await _counts() == before
    assert (await other.data(ME))["me"] is not None

    ok = await current.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": "old password", "newPassword": "new password"}},
    )
    assert ok["changePassword"]["errors"] == []
    assert ok["changePassword"]["token"] == current.token
    assert (await current.data(ME))["me"]["username"] == "ivy"
    assert await other.data(ME) == {"me": None}
    bad = await fresh_client.data(
        LOG_IN, {"input": {"username": "ivy", "password": "old password"}}
    )
    assert bad["logIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    await fresh_client.log_in("ivy", "new password")


async def test_balances_are_private_but_the_page_still_loads(fresh_client: GraphQLClient) -> None:
    jo = await fresh_client.sign_up("joe")
    kim = await fresh_client.sign_up("kim")
    kim_id = (await kim.data(ME))["me"]["id"]
    query = """query($id: ID!) { node(id: $id) { ... on User { username balance } }
                                 me { username balance } }"""
    body = await jo.post(query, {"id": kim_id})
    assert body["data"] == {
        "node": {"username": "kim", "balance": None},
        "me": {"username": "joe", "balance": "1000.00"},
    }
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("FORBIDDEN", ["node", "balance"])
    ]
    body = await fresh_client.post(query, {"id": kim_id})
    assert body["data"] == {"node": {"username": "kim", "balance": None}, "me": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    # Admins see everyone's.
    await models.User.filter(username="joe").update(role=models.Role.ADMIN)
    data = await jo.data(query, {"id": kim_id})
    assert data["node"]["balance"] == "1000.00"


async def test_author_user_links_staff_to_bylines(client: GraphQLClient) -> None:
    data = await client.data('{ author(slug: "oliver-scott") { user { username role } } }')
    assert data["author"]["user"] == {"username": "editor", "role": "AUTHOR"}


async def test_failed_logins_are_limited_per_account_and_address(
    fresh_client: GraphQLClient, clock: FakeClock
) -> None:
    await fresh_client.sign_up("lee", password="lee password")

    async def attempt(password: str, address: str = "testclient") -> dict[str, Any]:
        data = await fresh_client.data(LOG_IN, {"input": {"username": "lee", "password": password}})
        return data["logIn"]

    for _ in range(5):
        assert (await attempt("wrong"))["errors"][0]["code"] == "INVALID_CREDENTIALS"
    limited = await attempt("lee password")
    assert limited["token"] is None
    error = limited["errors"][0]
    assert error["code"] == "RATE_LIMITED"
    assert error["retryAfterSeconds"] == 180  # 5 per 900 s: one token every 180 s
    clock.advance(179)
    assert (await attempt("lee password"))["errors"][0]["code"] == "RATE_LIMITED"
    clock.advance(1)
    ok = await attempt("lee password")
    assert ok["errors"] == [] and ok["token"]


async def test_failed_logins_elsewhere_do_not_lock_the_owner_out(
    demo_client: GraphQLClient,
) -> None:
    from accounts.ratelimit import MemoryRateLimiter
    from accounts.service import Accounts
    from domain_events import discard
    from refusals import Refusal
    from settings import Settings

    accounts = Accounts(Settings(), MemoryRateLimiter(clock=FakeClock()), publish=discard)
    for _ in range(5):
        with pytest.raises(Refusal) as refused:
            await accounts.log_in("alice", "guess", "203.0.113.9")
        assert refused.value.code == "INVALID_CREDENTIALS"
    with pytest.raises(Refusal) as refused:
        await accounts.log_in("alice", "demo-password", "203.0.113.9")
    assert refused.value.code == "RATE_LIMITED"
    # The owner, from their own address, is not locked out by the attacker's failures.
    session = await accounts.log_in("alice", "demo-password", "198.51.100.7")
    assert session.user.username == "alice"


async def test_sign_ups_are_limited_per_address(
    fresh_client: GraphQLClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accounts.ratelimit import Rule

    # 200 an hour by default: exhaust it quickly by shrinking the rule on the live service.
    http_app = fresh_client.http._transport.app  # type: ignore[attr-defined]
    accounts = http_app.state.services.accounts
    monkeypatch.setattr(accounts, "signup_rule", Rule("signup/address", 2, 3600))
    await fresh_client.sign_up("mia1")
    await fresh_client.sign_up("mia2")
    before = await _counts()
    data = await fresh_client.data(
        SIGN_UP, {"input": {"username": "mia3", "password": "long enough", "displayName": "M"}}
    )
    assert data["signUp"]["errors"][0]["code"] == "RATE_LIMITED"
    assert data["signUp"]["errors"][0]["retryAfterSeconds"] == 1800
    assert await _counts() == before
    clock.advance(1800)
    await fresh_client.sign_up("mia3")


async def test_roles_gate_the_moderation_queue(demo_client: GraphQLClient) -> None:
    query = "{ reportedComments { totalCount } }"
    body = await demo_client.post(query)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    alice = await demo_client.log_in("alice")
    body = await alice.post(query)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin = await demo_client.log_in("admin")
    assert (await admin.data(query))["reportedComments"]["totalCount"] >= 0


async def test_node_ids_of_other_types_in_mutations(fresh_client: GraphQLClient) -> None:
    user = await fresh_client.sign_up("ned")
    body = await user.post(
        'mutation($id: ID!) { postComment(input: {articleId: $id, body: "hi"}) { errors { code } } }',
        {"id": to_global_id("Tag", 1)},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
