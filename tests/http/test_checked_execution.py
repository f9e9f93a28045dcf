"""The view runs a checked operation straight on graphql-core (``GraphQLApp._execute_checked``):
it must answer exactly as strawberry's ``execute`` did, data, errors, codes and masking alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient

DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("{ me { username balance } }", {}),
    ("query($f: Int!) { markets(first: $f) { nodes { slug outcomes { label } } } }", {"f": 2}),
    ("query($f: Int!) { markets(first: $f) { nodes { slug } } }", {"f": 1000}),  # BAD_USER_INPUT
    ('{ node(id: "not an id") { id } }', {}),
    ('{ a: node(id: "not an id") { id } stats { marketCount } }', {}),
    ("{ leaderboard(first: 3) { user { username } } }", {}),
    (
        """mutation($input: BuySharesInput!) { buyShares(input: $input) {
             trade { id } balance errors { code message field } } }""",
        {"input": {"outcomeId": "T3V0Y29tZTox", "amount": "99999999.00"}},  # a refusal
    ),
    (
        """mutation($input: BuySharesInput!) { buyShares(input: $input) { errors { code } } }""",
        {"input": {"outcomeId": "T3V0Y29tZTox", "amount": "1.001"}},  # a bad amount
    ),
    ("mutation { logOut { errors { code } } }", {}),
]


def _view(client: GraphQLClient) -> Any:
    return client.http._transport.app.state.graphql  # type: ignore[attr-defined]


async def test_checked_operations_answer_as_strawberrys_execute(
    demo_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = await demo_client.sign_up("checked_reader")
    anonymous = demo_client
    view = _view(demo_client)
    assert view.direct_execution
    schema_execute = view.schema.execute
    answers: dict[bool, list[Any]] = {}
    for direct in (True, False):
        view.direct_execution = direct
        calls = 0

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await schema_execute(*args, **kwargs)

        monkeypatch.setattr(view.schema, "execute", counted)
        answers[direct] = [
            await who.post(query, variables)
            for who in (anonymous, reader)
            for query, variables in DOCUMENTS[:-1]
        ]
        assert calls == (0 if direct else 2 * (len(DOCUMENTS) - 1))
    assert answers[True] == answers[False]
    codes = {
        error["extensions"]["code"] for body in answers[True] for error in body.get("errors", ())
    }
    assert codes == {"BAD_USER_INPUT", "UNAUTHENTICATED"}


async def test_an_unexpected_failure_is_masked_as_before(
    demo_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = _view(demo_client)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    field = view.core.query_type.fields["leaderboard"]
    monkeypatch.setattr(field, "resolve", lambda *args, **kwargs: broken())
    answers = []
    for direct in (True, False):
        view.direct_execution = direct
        answers.append(
            await demo_client.post("{ leaderboard(first: 2) { rank } stats { marketCount } }")
        )
    assert answers[0] == answers[1]
    assert answers[0]["data"] is None or answers[0]["data"].get("leaderboard") is None
    assert [e["extensions"]["code"] for e in answers[0]["errors"]] == ["INTERNAL_SERVER_ERROR"]
    assert "secret" not in str(answers[0])
