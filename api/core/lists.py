"""Pieces the domains' list specs are built from: time orders, search clauses, SQL times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.core.errors import BadUserInput
from api.core.pagination import Ordering, SortKey
from db.sql import is_postgres, like_pattern

MAX_SEARCH_LENGTH = 200


def by_time(name: str, prefix: str, column: str, desc: bool) -> Ordering:
    """Newest (``desc``) or oldest first by ``prefix.column``, then by id the same way."""
    return Ordering(
        name,
        (SortKey(f"{prefix}.{column}", "datetime", desc), SortKey(f"{prefix}.id", "int", desc)),
    )


def search_terms(search: str | None) -> str | None:
    """The trimmed search text, None when empty; BAD_USER_INPUT when too long."""
    if search is None:
        return None
    text = search.strip()
    if len(text) > MAX_SEARCH_LENGTH:
        raise BadUserInput(f"`search` is at most {MAX_SEARCH_LENGTH} characters.", field="search")
    return text or None


def search_clause(columns: list[str], search: str) -> tuple[str, tuple[Any, ...]]:
    """A case-insensitive LIKE over ``columns`` (any of them matching)."""
    pattern = like_pattern(search)
    sql = " OR ".join(f"LOWER({column}) LIKE ? ESCAPE '\\'" for column in columns)
    return f"({sql})", tuple(pattern for _ in columns)


def time_literal(moment: datetime) -> str:
    """``moment`` as an SQL literal comparable with stored timestamps (ours, never user text)."""
    if is_postgres():
        return f"CAST('{moment.isoformat()}' AS TIMESTAMPTZ)"
    return f"'{moment.isoformat(' ')}'"
