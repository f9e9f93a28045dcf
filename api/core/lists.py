"""Pieces the domains' list specs are built from: time orders, search clauses, SQL times."""

from __future__ import annotations

from datetime import datetime

from api.core.errors import BadUserInput
from api.core.pagination import Ordering, SortKey
from db.search import rank_sql
from db.sql import is_postgres

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


def time_literal(moment: datetime) -> str:
    """``moment`` as an SQL literal comparable with stored timestamps (ours, never user text)."""
    if is_postgres():
        return f"CAST('{moment.isoformat()}' AS TIMESTAMPTZ)"
    return f"'{moment.isoformat(' ')}'"


def relevance(
    kind: str, search: str | None, alias: str, then: tuple[SortKey, ...]
) -> Ordering | None:
    """Most relevant to ``search`` first (then ``then``): the order of a searched list when no
    ``orderBy`` is given; None without a search (or one that finds nothing)."""
    text = search_terms(search)
    if text is None:
        return None
    rank = rank_sql(kind, text, alias)
    if rank is None:
        return None
    # Named by its list: a cursor of ``search`` or of the other list is refused here.
    return Ordering(f"{kind.upper()}_RELEVANCE", (SortKey(rank, "float", True), *then))
