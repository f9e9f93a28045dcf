"""Reads of a thread for live delivery: whether it exists, its last sequence, a new comment as
readers may see it, and the visible comments between two sequences (a subscription's
replay)."""

from __future__ import annotations

from clock import now
from db import models
from db.sql import fetch_dicts, fetch_rows


async def article_exists(article_id: int) -> bool:
    """Whether article ``article_id`` (a thread to follow) exists and readers see it."""
    rows = await fetch_dicts(
        f"SELECT 1 AS shown FROM articles a WHERE a.id = ? AND {models.visible_sql('a')}",
        [article_id, now()],
    )
    return bool(rows)


async def shown_comment(comment_id: int) -> models.Comment | None:
    """Comment ``comment_id`` as a plain row (``db.sql.PlainRow``), unless it is deleted or
    readers don't see its article now (archived or unpublished since it was posted): one
    statement, as loading the comment alone was."""
    rows = await fetch_rows(
        models.Comment,
        "SELECT c.* FROM comments c JOIN articles a ON a.id = c.article_id "
        f"WHERE c.id = ? AND c.deleted = ? AND {models.visible_sql('a')}",
        [comment_id, False, now()],
    )
    return rows[0] if rows else None


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
