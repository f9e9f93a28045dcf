"""Full-text search over articles and markets, each database with its own engine.

- SQLite: FTS5 tables ``article_search`` (title, excerpt, body) and ``market_search``
  (question, description), external-content tables kept in step with their rows by triggers in
  the same transaction; tokenizer ``porter unicode61 remove_diacritics 2`` (English stemming,
  Unicode case folding, "Zürich" = "zurich"); ranked by ``bm25`` with the title weighted most.
- PostgreSQL: tables ``article_search`` / ``market_search`` of weighted ``tsvector`` documents
  (``english`` configuration) kept by triggers, with GIN indexes; ``websearch_to_tsquery``;
  ranked by ``ts_rank_cd``.

A reader's query follows ``websearch_to_tsquery``'s syntax on both: words (all of them),
"quoted phrases", ``-excluded`` words and ``OR``. On SQLite :func:`fts5_query` translates it
into an FTS5 expression of quoted terms only, so nothing a reader types is FTS5 syntax. A query
that parses to nothing matches nothing (as a query of only excluded words does on SQLite).

Snippets come back with the matched words between :data:`MARK_START` and :data:`MARK_END`
(private-use characters), for the caller to escape the text and turn those into ``<mark>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from db.models import visible_sql
from db.sql import fetch_dicts, is_postgres, placeholders

MARK_START = "\ue000"
MARK_END = "\ue001"
# Words of a query: letters and digits of any script (FTS5's unicode61 splits the same way).
_WORD = re.compile(r"[^\W_]+")
# A query's pieces: a quoted phrase, a word (with a leading "-" to exclude it), or OR.
_PIECE = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')


def _quoted(words: Sequence[str]) -> str:
    return '"' + " ".join(words) + '"'


def fts5_query(text: str) -> str | None:
    """``text`` (websearch syntax) as an FTS5 expression; None when it selects nothing.

    As ``websearch_to_tsquery`` reads it: ``OR`` separates alternatives, each the AND of its
    words and phrases minus its ``-excluded`` ones ("a b OR c -d" is (a AND b) OR (c NOT d)).
    An alternative with nothing but exclusions can't be said in FTS5 and is left out.
    """
    clauses: list[tuple[list[str], list[str]]] = [([], [])]
    for match in _PIECE.finditer(text):
        negated = bool(match.group(1) or match.group(3))
        raw = match.group(2) if match.group(2) is not None else match.group(4)
        if match.group(4) is not None and raw == "OR" and not negated:
            clauses.append(([], []))
            continue
        words = _WORD.findall(raw)
        if words:
            clauses[-1][1 if negated else 0].append(_quoted(words))
    alternatives = []
    for positives, negatives in clauses:
        if not positives:
            continue
        expression = "(" + " AND ".join(positives) + ")"
        for term in negatives:
            expression = f"({expression} NOT {term})"
        alternatives.append(expression)
    if not alternatives:
        return None
    return " OR ".join(alternatives)


def article_ids_matching(query: str) -> tuple[str, tuple[Any, ...]] | None:
    """A condition on ``a.id`` for articles matching ``query``, or None: nothing matches."""
    if is_postgres():
        return (
            "a.id IN (SELECT article_id FROM article_search "
            "WHERE document @@ websearch_to_tsquery('english', ?))",
            (query,),
        )
    expression = fts5_query(query)
    if expression is None:
        return None
    return (
        "a.id IN (SELECT rowid FROM article_search WHERE article_search MATCH ?)",
        (expression,),
    )


def market_ids_matching(query: str) -> tuple[str, tuple[Any, ...]] | None:
    """A condition on ``m.id`` for markets matching ``query``, or None: nothing matches."""
    if is_postgres():
        return (
            "m.id IN (SELECT market_id FROM market_search "
            "WHERE document @@ websearch_to_tsquery('english', ?))",
            (query,),
        )
    expression = fts5_query(query)
    if expression is None:
        return None
    return ("m.id IN (SELECT rowid FROM market_search WHERE market_search MATCH ?)", (expression,))


def rank_sql(kind: str, query: str, alias: str) -> str | None:
    """An SQL expression: the relevance of row ``alias`` (an article ``a`` or a market ``m``) for
    ``query``, higher first; None when the query selects nothing. The query is inlined as a
    string literal (the expression is part of an order, which has no parameters): on SQLite it
    is :func:`fts5_query`'s quoted terms, on PostgreSQL the reader's text, quotes doubled."""
    table = "article_search" if kind == "Article" else "market_search"
    if is_postgres():
        literal = "'" + query.replace("'", "''") + "'"
        key = "article_id" if kind == "Article" else "market_id"
        return (
            f"COALESCE((SELECT ts_rank_cd(s.document, websearch_to_tsquery('english', {literal}))"
            f"::float8 FROM {table} s WHERE s.{key} = {alias}.id), 0)"
        )
    expression = fts5_query(query)
    if expression is None:
        return None
    literal = "'" + expression.replace("'", "''") + "'"
    weights = "10.0, 4.0, 1.0" if kind == "Article" else "10.0, 2.0"
    return (
        f"COALESCE((SELECT -bm25({table}, {weights}) FROM {table} "
        f"WHERE {table} MATCH {literal} AND rowid = {alias}.id), 0)"
    )


async def search_hits(
    query: str,
    kinds: Sequence[str],
    size: int,
    after: tuple[float, str, int] | None,
    now: Any,
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``size + 1`` hits (``kind``, ``id``, ``rank``) after the cursor, best first
    (rank, then kind, then id), and how many hits there are in all."""
    postgres = is_postgres()
    parts: list[str] = []
    params: list[Any] = []
    if postgres:
        if "Article" in kinds:
            parts.append(
                "SELECT 'Article' AS kind, a.id AS id, ts_rank_cd(s.document, q.q)::float8 AS rank "
                "FROM article_search s JOIN articles a ON a.id = s.article_id, "
                "(SELECT websearch_to_tsquery('english', ?) AS q) q "
                f"WHERE s.document @@ q.q AND {visible_sql('a')}"
            )
            params += [query, now]
        if "Market" in kinds:
            parts.append(
                "SELECT 'Market' AS kind, m.id AS id, ts_rank_cd(s.document, q.q)::float8 AS rank "
                "FROM market_search s JOIN markets m ON m.id = s.market_id, "
                "(SELECT websearch_to_tsquery('english', ?) AS q) q WHERE s.document @@ q.q"
            )
            params += [query]
    else:
        expression = fts5_query(query)
        if expression is None:
            return [], 0
        if "Article" in kinds:
            parts.append(
                "SELECT 'Article' AS kind, a.id AS id, "
                "-bm25(article_search, 10.0, 4.0, 1.0) AS rank "
                "FROM article_search JOIN articles a ON a.id = article_search.rowid "
                f"WHERE article_search MATCH ? AND {visible_sql('a')}"
            )
            params += [expression, now]
        if "Market" in kinds:
            parts.append(
                "SELECT 'Market' AS kind, m.id AS id, -bm25(market_search, 10.0, 2.0) AS rank "
                "FROM market_search JOIN markets m ON m.id = market_search.rowid "
                "WHERE market_search MATCH ?"
            )
            params += [expression]
    if not parts:
        return [], 0
    keyset = ""
    if after is not None:
        rank, kind, pk = after
        keyset = (
            "WHERE (h.rank < ? OR (h.rank = ? AND h.kind > ?) "
            "OR (h.rank = ? AND h.kind = ? AND h.id > ?)) "
        )
        params += [rank, rank, kind, rank, kind, pk]
    sql = (
        "SELECT h.kind, h.id, h.rank, h.total FROM (SELECT hits.*, COUNT(*) OVER () AS total "
        f"FROM ({' UNION ALL '.join(parts)}) hits) h {keyset}"
        f"ORDER BY h.rank DESC, h.kind, h.id LIMIT {int(size) + 1}"
    )
    rows = await fetch_dicts(sql, params)
    total = int(rows[0]["total"]) if rows else 0
    if not rows and after is not None:
        # Past the last hit: count them all the same (a page of nothing still says how many).
        count_sql = f"SELECT COUNT(*) AS n FROM ({' UNION ALL '.join(parts)}) hits"
        counted = await fetch_dicts(count_sql, params[: len(params) - 6])
        total = int(counted[0]["n"])
    return rows, total


async def snippets(query: str, kind: str, ids: Sequence[int]) -> dict[int, str]:
    """Per id, a short passage of the article (or market) around the words ``query`` matched,
    matches between :data:`MARK_START` and :data:`MARK_END` (raw text: escape it)."""
    if not ids:
        return {}
    marks = placeholders(len(ids))
    if is_postgres():
        if kind == "Article":
            text, table, alias = "concat_ws(' ', a.title, a.excerpt, a.body)", "articles", "a"
        else:
            text, table, alias = "concat_ws(' ', m.question, m.description)", "markets", "m"
        options = (
            f"'StartSel=' || chr({ord(MARK_START)}) || ', StopSel=' || chr({ord(MARK_END)}) || "
            "', MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=\" … \"'"
        )
        rows = await fetch_dicts(
            f"SELECT {alias}.id AS id, ts_headline('english', {text}, "
            f"websearch_to_tsquery('english', ?), {options}) AS snippet "
            f"FROM {table} {alias} WHERE {alias}.id IN ({marks})",
            [query, *ids],
        )
    else:
        expression = fts5_query(query)
        if expression is None:
            return {}
        table = "article_search" if kind == "Article" else "market_search"
        rows = await fetch_dicts(
            f"SELECT rowid AS id, snippet({table}, -1, char({ord(MARK_START)}), "
            f"char({ord(MARK_END)}), '…', 16) AS snippet "
            f"FROM {table} WHERE {table} MATCH ? AND rowid IN ({marks})",
            [expression, *ids],
        )
    return {int(row["id"]): str(row["snippet"] or "") for row in rows}
