"""Full-text search over articles and markets, each database with its own engine.

- SQLite: FTS5 tables ``article_search`` (title, excerpt, body) and ``market_search``
  (question, description), external-content tables kept in step with their rows by triggers in
  the same transaction; tokenizer ``porter unicode61 remove_diacritics 2`` (English stemming,
  Unicode case folding, "Zürich" = "zurich"); ranked by ``bm25`` with the title weighted most.
- PostgreSQL: tables ``article_search`` / ``market_search`` of weighted ``tsvector`` documents
  (configuration :data:`CONFIG`, migration 0008: ``english``'s parser, ``unaccent``, a Porter
  stemmer as FTS5's, no stop words as FTS5 has none, hyphenated words indexed by their parts as
  FTS5 splits them) kept by triggers, with GIN indexes; ``websearch_to_tsquery``; ranked by
  ``ts_rank_cd``.

A reader's query follows ``websearch_to_tsquery``'s syntax on both, read once here
(:func:`parse_query`): words (all of them), "quoted phrases", ``-excluded`` words and ``OR``
(any case). On SQLite :func:`fts5_query` states it as an FTS5 expression of quoted terms only,
so nothing a reader types is FTS5 syntax; on PostgreSQL :func:`websearch_text` restates it with
every operand quoted. A query that parses to nothing (no word, or only excluded ones) matches
nothing on both.

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


def holds_markers(text: str) -> bool:
    """Whether ``text`` holds :data:`MARK_START` or :data:`MARK_END`: articles and markets are
    refused such text, so that only the engine's highlights are marked in a snippet."""
    return MARK_START in text or MARK_END in text


MARKERS_REFUSED = "can't contain the characters U+E000 and U+E001 (search highlighting's)"
# PostgreSQL's text search configuration (migration 0008): ``english``'s parser with
# ``unaccent`` and a Porter stemmer without stop words, so that it finds what FTS5 finds.
CONFIG = "agora_search"
# Words of a query: letters and digits of any script (FTS5's unicode61 splits the same way).
_WORD = re.compile(r"[^\W_]+")
# What ends an unquoted operand besides white space and '"' (websearch_to_tsquery skips them).
_OPERATOR_CHARS = frozenset("!&|()<")


def _or_at(text: str, i: int) -> bool:
    """Whether ``text[i:]`` starts an ``OR`` as websearch_to_tsquery reads one after an operand:
    "or" in any case, not part of a word, with something after it."""
    if text[i : i + 2] not in ("or", "Or", "oR", "OR"):
        return False
    j = i + 2
    if j >= len(text) or text[j] in "-_" or text[j].isalnum():
        return False
    return any(not c.isspace() for c in text[j + 1 :])


def parse_query(text: str) -> list[tuple[list[str], list[str]]]:
    """``text`` read as ``websearch_to_tsquery`` reads it: its alternatives (split by ``OR``),
    each the operands it requires and those it excludes (an operand is a quoted phrase or a
    run of characters up to white space, '"' or one of ``!&|()<``, which are skipped). A ``-``
    before an operand excludes it, even apart from it (``- trade``); two cancel (``--trade``).
    Operands without a word are left out, and so are alternatives with nothing required (FTS5
    can't say "everything but"): an empty list selects nothing."""
    alternatives: list[tuple[list[str], list[str]]] = [([], [])]
    i, n = 0, len(text)
    want_operand = True
    negations = 0
    while i < n:
        ch = text[i]
        if want_operand:
            if ch == "-":
                negations += 1
                i += 1
                continue
            if ch == '"':
                end = text.find('"', i + 1)
                end = n if end < 0 else end
                value, i = text[i + 1 : end], end + 1
            elif ch in _OPERATOR_CHARS or ch.isspace():
                i += 1
                continue
            else:
                j = i
                while j < n and not (
                    text[j].isspace() or text[j] == '"' or text[j] in _OPERATOR_CHARS
                ):
                    j += 1
                value, i = text[i:j], j
            if _WORD.search(value):
                alternatives[-1][negations % 2].append(value)
            negations = 0
            want_operand = False
        elif _or_at(text, i):
            alternatives.append(([], []))
            i += 2
            want_operand = True
        elif ch in _OPERATOR_CHARS or ch.isspace():
            i += 1
        else:
            want_operand = True  # the next operand, ANDed
    return [alternative for alternative in alternatives if alternative[0]]


def _quoted(words: Sequence[str]) -> str:
    return '"' + " ".join(words) + '"'


def fts5_query(text: str) -> str | None:
    """``text`` (websearch syntax) as an FTS5 expression; None when it selects nothing.

    As ``websearch_to_tsquery`` reads it (:func:`parse_query`): ``OR`` separates
    alternatives, each the AND of its words and phrases minus its ``-excluded`` ones ("a b OR c
    -d" is (a AND b) OR (c NOT d)); every operand becomes a quoted FTS5 phrase of its words.
    """
    alternatives = []
    for positives, negatives in parse_query(text):
        expression = "(" + " AND ".join(_quoted(_WORD.findall(v)) for v in positives) + ")"
        for value in negatives:
            expression = f"({expression} NOT {_quoted(_WORD.findall(value))})"
        alternatives.append(expression)
    if not alternatives:
        return None
    return " OR ".join(alternatives)


def websearch_text(text: str) -> str | None:
    """``text`` restated for PostgreSQL's ``websearch_to_tsquery``: the same alternatives and
    operands as :func:`fts5_query`'s, each operand quoted (PostgreSQL's parser splits it into
    words); None when it selects nothing. Without this, a query of only exclusions would be
    "everything but" there and nothing on SQLite."""
    alternatives = parse_query(text)
    if not alternatives:
        return None
    return " OR ".join(
        " ".join([f'"{v}"' for v in positives] + [f'-"{v}"' for v in negatives])
        for positives, negatives in alternatives
    )


def _tsquery_literal(text: str) -> str:
    """The tsquery of ``websearch_text``'s ``text`` as an SQL expression without the reader's
    characters in it: hex digits only (an inlined ``?`` or ``$1`` would be read as a
    parameter when the statement is put into PostgreSQL's dialect)."""
    return (
        f"websearch_to_tsquery('{CONFIG}', "
        f"convert_from(decode('{text.encode('utf-8').hex()}', 'hex'), 'UTF8'))"
    )


def article_ids_matching(query: str) -> tuple[str, tuple[Any, ...]] | None:
    """A condition on ``a.id`` for articles matching ``query``, or None: nothing matches."""
    if is_postgres():
        text = websearch_text(query)
        if text is None:
            return None
        return (
            "a.id IN (SELECT article_id FROM article_search "
            f"WHERE document @@ websearch_to_tsquery('{CONFIG}', ?))",
            (text,),
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
        text = websearch_text(query)
        if text is None:
            return None
        return (
            "m.id IN (SELECT market_id FROM market_search "
            f"WHERE document @@ websearch_to_tsquery('{CONFIG}', ?))",
            (text,),
        )
    expression = fts5_query(query)
    if expression is None:
        return None
    return ("m.id IN (SELECT rowid FROM market_search WHERE market_search MATCH ?)", (expression,))


def rank_sql(kind: str, query: str, alias: str) -> str | None:
    """An SQL expression: the relevance of row ``alias`` (an article ``a`` or a market ``m``) for
    ``query``, higher first; None when the query selects nothing. The query is inlined (the
    expression is part of an order, which has no parameters), never as the reader's text: on
    SQLite it is :func:`fts5_query`'s quoted words, on PostgreSQL hex digits."""
    table = "article_search" if kind == "Article" else "market_search"
    if is_postgres():
        text = websearch_text(query)
        if text is None:
            return None
        key = "article_id" if kind == "Article" else "market_id"
        return (
            f"COALESCE((SELECT ts_rank_cd(s.document, {_tsquery_literal(text)})"
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
        text = websearch_text(query)
        if text is None:
            return [], 0
        if "Article" in kinds:
            parts.append(
                "SELECT 'Article' AS kind, a.id AS id, ts_rank_cd(s.document, q.q)::float8 AS rank "
                "FROM article_search s JOIN articles a ON a.id = s.article_id, "
                f"(SELECT websearch_to_tsquery('{CONFIG}', ?) AS q) q "
                f"WHERE s.document @@ q.q AND {visible_sql('a')}"
            )
            params += [text, now]
        if "Market" in kinds:
            parts.append(
                "SELECT 'Market' AS kind, m.id AS id, ts_rank_cd(s.document, q.q)::float8 AS rank "
                "FROM market_search s JOIN markets m ON m.id = s.market_id, "
                f"(SELECT websearch_to_tsquery('{CONFIG}', ?) AS q) q WHERE s.document @@ q.q"
            )
            params += [text]
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
        search = websearch_text(query)
        if search is None:
            return {}
        if kind == "Article":
            text, table, alias = "concat_ws(' ', a.title, a.excerpt, a.body)", "articles", "a"
        else:
            text, table, alias = "concat_ws(' ', m.question, m.description)", "markets", "m"
        # The markers can't come from the text itself (it may hold those characters).
        text = f"translate({text}, chr({ord(MARK_START)}) || chr({ord(MARK_END)}), '')"
        options = (
            f"'StartSel=' || chr({ord(MARK_START)}) || ', StopSel=' || chr({ord(MARK_END)}) || "
            "', MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=\" … \"'"
        )
        rows = await fetch_dicts(
            f"SELECT {alias}.id AS id, ts_headline('{CONFIG}', {text}, "
            f"websearch_to_tsquery('{CONFIG}', ?), {options}) AS snippet "
            f"FROM {table} {alias} WHERE {alias}.id IN ({marks})",
            [search, *ids],
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
