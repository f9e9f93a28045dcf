"""Lists' specs as loader keys (hashed once, shared within a response, equal to fresh ones),
and the other values a page builds per row from kept pieces."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql.pyutils import Path
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.transactions import in_transaction

from api.accounts.types import Role, _role, initials
from api.comments.lists import COMMENT_ORDERS, REPLIES, TOP_LEVEL_COMMENTS
from api.core.dataloader import ListSpec, LoaderBase
from api.core.execution import _path
from api.core.pagination import (
    Join,
    Ordering,
    PageRequest,
    SortKey,
    Source,
    encode_cursor,
    hashed_once,
    page_request,
)
from db import models
from db.sql import connection
from tests.conftest import GraphQLClient

NEWEST = COMMENT_ORDERS["NEWEST"]
OLDEST = COMMENT_ORDERS["OLDEST"]


def _request(
    first: int | None = None, after: str | None = None, last: int | None = None
) -> PageRequest:
    return page_request(first, after, last, None, NEWEST, default_size=20, max_size=100)


def _compared(value: Any) -> tuple[Any, ...]:
    return tuple(getattr(value, f.name) for f in fields(value) if f.compare)


@pytest.mark.parametrize(
    "value",
    [
        SortKey("c.id", "int", True),
        NEWEST,
        PageRequest(5),
        PageRequest(3, True, (datetime(2026, 1, 1, tzinfo=UTC), 7)),
        REPLIES,
        TOP_LEVEL_COMMENTS,
        *REPLIES.joins,
        ListSpec(REPLIES, NEWEST, PageRequest(5), False),
    ],
    ids=lambda v: type(v).__name__,
)
def test_a_kept_hash_is_the_hash_of_the_compared_fields(value: Any) -> None:
    # The dataclass's own hash would be hash(fields compared); kept, it must stay that.
    fresh = replace(value)
    assert hash(value) == hash(_compared(value)) == hash(value)
    assert fresh == value and fresh is not value and hash(fresh) == hash(value)


def test_equal_specs_hash_alike_and_unequal_ones_differ() -> None:
    a = ListSpec(REPLIES, NEWEST, PageRequest(5), False)
    b = ListSpec(REPLIES, NEWEST, PageRequest(5), False)
    assert a == b and hash(a) == hash(b) and a is not b
    assert {(1, a): "page"}[(1, b)] == "page"
    for other in (
        ListSpec(REPLIES, OLDEST, PageRequest(5), False),
        ListSpec(REPLIES, NEWEST, PageRequest(6), False),
        ListSpec(REPLIES, NEWEST, PageRequest(5, True), False),
        ListSpec(REPLIES, NEWEST, PageRequest(5), True),
        ListSpec(TOP_LEVEL_COMMENTS, NEWEST, PageRequest(5), False),
    ):
        assert other != a


def test_a_first_page_request_is_one_object_per_size_and_direction() -> None:
    assert _request(5) is _request(5)
    assert _request(5) == PageRequest(5) and hash(_request(5)) == hash(PageRequest(5))
    assert _request() is _request(20)  # the default size
    assert _request(last=5) is _request(last=5) == PageRequest(5, True)
    assert _request(last=5) is not _request(5)


def test_a_request_after_a_cursor_is_its_own() -> None:
    cursor = encode_cursor(NEWEST, [datetime(2026, 1, 1, tzinfo=UTC), 7])
    first, second = _request(5, cursor), _request(5, cursor)
    assert first == second and first is not second
    assert first.cursor == second.cursor != None  # noqa: E711
    assert first != _request(5)


def test_a_response_shares_one_spec_for_equal_lists() -> None:
    loaders = LoaderBase()
    spec = loaders.list_spec(REPLIES, NEWEST, _request(5), False)
    assert loaders.list_spec(REPLIES, NEWEST, PageRequest(5), False) is spec
    assert spec == ListSpec(REPLIES, NEWEST, PageRequest(5), False)
    assert loaders.list_spec(REPLIES, NEWEST, PageRequest(6), False) is not spec
    assert loaders.list_spec(REPLIES, NEWEST, PageRequest(5), True) is not spec
    assert loaders.list_spec(REPLIES, OLDEST, PageRequest(5), False) is not spec
    # Another response's are its own; a released one starts afresh.
    assert LoaderBase().list_spec(REPLIES, NEWEST, PageRequest(5), False) is not spec
    loaders.release()
    with pytest.raises(AttributeError):
        loaders.list_spec(REPLIES, NEWEST, PageRequest(5), False)


def test_sources_and_joins_compare_by_value() -> None:
    join = Join("u", REPLIES.joins[0].model, "u.id = c.author_id", "user_by_id")
    a = Source(REPLIES.model, "comments c", "c", (("c.x = ?", (1,)),), "c.parent_id", (join,))
    b = Source(REPLIES.model, "comments c", "c", (("c.x = ?", (1,)),), "c.parent_id", (join,))
    c = Source(REPLIES.model, "comments c", "c", (("c.x = ?", (2,)),), "c.parent_id", (join,))
    assert a == b and hash(a) == hash(b) and a != c
    assert Ordering("X", (SortKey("c.id", "int", True),)) == Ordering(
        "X", (SortKey("c.id", "int", True),)
    )


async def test_the_connection_is_tortoises(client: GraphQLClient) -> None:
    outside = connection()
    assert outside is connections.get("default")
    async with in_transaction() as transaction:
        assert connection() is connections.get("default") is transaction
        assert isinstance(transaction, TransactionalDBClient) and transaction is not outside
    assert connection() is outside


def test_a_stored_role_is_the_schemas_member() -> None:
    for stored in models.Role:
        assert _role(stored) is Role(stored.value)
        assert _role(stored.value) is Role(stored.value)
    with pytest.raises(ValueError):
        _role("OVERLORD")


def test_initials_are_kept_per_name_and_the_same() -> None:
    initials("Oliver Scott")
    hits = initials.cache_info().hits
    assert initials("Oliver Scott") == "OS"
    assert initials.cache_info().hits == hits + 1
    assert initials("jean-luc picard") == "JP" and initials("Ωmega ßeta") == "ΩSS"


def test_a_path_made_in_c_is_graphql_cores() -> None:
    root = Path(None, "article", "Query")
    made = _path((_path((root, "comments", "Article")), 3, None))
    assert type(made) is Path
    assert made == Path(Path(root, "comments", "Article"), 3, None)
    assert made.as_list() == ["article", "comments", 3] and made.typename is None
    assert made.prev is not None and made.prev.typename == "Article"


def test_a_kept_object_is_made_once_per_response() -> None:
    loaders = LoaderBase()
    made: list[str] = []

    def make(name: str) -> Any:
        made.append(name)
        return None if name == "none" else [name]

    first = loaders.kept(("Tag", 1), lambda: make("a"))
    assert loaders.kept(("Tag", 1), lambda: make("b")) is first == ["a"]
    assert loaders.kept(("Tag", 2), lambda: make("c")) == ["c"]
    assert loaders.kept("n", lambda: make("none")) is None
    assert loaders.kept("n", lambda: make("none")) is None  # None is kept too
    assert made == ["a", "c", "none"]
    assert LoaderBase().kept(("Tag", 1), lambda: make("d")) == ["d"]  # another response's
    loaders.release()
    with pytest.raises(AttributeError):
        loaders.kept(("Tag", 1), lambda: make("e"))
    assert made == ["a", "c", "none", "d"]


def test_a_kept_hash_of_one_field_is_its_tuples() -> None:
    @hashed_once
    @dataclass(frozen=True)
    class One:
        value: int

    assert hash(One(3)) == hash((3,)) and One(3) == One(3)
