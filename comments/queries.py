"""Reads of a thread for live delivery: whether it exists, its last sequence, and the visible
comments between two sequences (a subscription's replay)."""

from __future__ import annotations

from clock import now
from db import models
from db.sql import fetch_dicts


async def article_exists(article_id: int) -> bool:
    """Whether article ``article_id`` (a thread to follow) exists and readers see it."""
    rows = await fetch_dicts(
        f"SELECT 1 AS shown FROM articles a WHERE a.id = ? AND {models.visible_sql('a')}",
        [article_id, now()],
    )
    return bool(rows)


async def last_sequence(article_id: int) -> int:
    """The sequence of the article's last comment so far (0: none, or no such article)."""
    rows = await fetch_dicts("SELECT comment_seq FROM articles WHERE id = ?", [article_id])
    return int(rows[0]["comment_seq"]) if rows else 0


async def visible_comments_between(
    article_id: int, after: int, before: int | None, limit: int
) -> list[models.Comment]:
    """Up to ``limit`` comments of the article with ``after`` < sequence < ``before`` (no upper
    bound when None), in sequence order, deleted ones left out."""
    rows = await fetch_dicts(
        "SELECT * FROM comments WHERE article_id = ? AND sequence > ? "
        "AND deleted = ? "
        + ("AND sequence < ? " if before is not None else "")
        + "ORDER BY sequence LIMIT ?",
        [article_id, after, False] + ([before] if before is not None else []) + [limit],
    )
    return [models.Comment._init_from_db(**row) for row in rows]
