"""The comment write path: post, edit, delete, report.

Every counter (``Article.comment_count``, ``Article.comment_seq``, ``Comment.reply_count``,
``Comment.report_count``) moves by an atomic ``UPDATE … SET n = n ± 1`` inside the write's
transaction, never by read-modify-write, so they stay exact under concurrent writers on both
databases. The sequence is taken with ``UPDATE … RETURNING``, which also locks the article row
on PostgreSQL until the commit: sequences are handed out in commit order. Each change is
published (a :class:`CommentChanged`) after its commit; concurrent writers may publish out of
order, which subscribers tell by the sequence.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from accounts.ratelimit import RateLimiter, Rule
from accounts.roles import at_least
from clock import Clock, now
from comments.events import CommentChanged
from comments.render import render_markdown
from db import models
from db.sql import execute, fetch_dicts
from domain_events import Publisher
from refusals import Refusal, RefusalCode, not_found, validation
from settings import Settings

# Readers see (and comment on) published, live articles only.
_VISIBLE = models.visible_sql("a")
_VISIBLE_ROW = models.visible_sql("articles")


class NotAllowed(Exception):
    """The viewer may not do this to the comment (an access error, not a refusal)."""


class Comments:
    """Comment operations, bound to the settings, the rate limiter, a publisher and a clock."""

    def __init__(
        self,
        settings: Settings,
        limiter: RateLimiter,
        *,
        publish: Publisher,
        clock: Clock = now,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.publish = publish
        self.clock = clock
        self.post_rule = Rule.parse("comment/user", settings.comment_rate)

    def _body(self, body: str) -> str:
        text = body.strip()
        limit = self.settings.comment_max_length
        if not 1 <= len(text) <= limit:
            raise validation(f"A comment is 1 to {limit} characters long.", "body")
        if "\x00" in text:
            raise validation("A comment can't contain NUL characters.", "body")
        return text

    async def post(
        self, user: models.User, article_id: int, body: str, parent_id: int | None
    ) -> models.Comment:
        """A new comment (or a reply to ``parent_id``, on the same article, not deleted)."""
        text = self._body(body)
        retry = await self.limiter.hit(self.post_rule, str(user.id))
        if retry is not None:
            raise Refusal(RefusalCode.RATE_LIMITED, "You are commenting too fast.", None, retry)
        html = render_markdown(text)
        now = self.clock()
        async with in_transaction() as conn:
            if parent_id is not None:
                # Counting the reply on the parent first also checks it is live and here,
                # and holds its row until the commit (a concurrent delete waits).
                changed = await execute(
                    "UPDATE comments SET reply_count = reply_count + 1 "
                    "WHERE id = ? AND article_id = ? AND deleted = ?",
                    (parent_id, article_id, False),
                    conn,
                )
                if changed != 1:
                    raise not_found(
                        "There is no such comment to reply to on this article.", "parentId"
                    )
            # Only an article readers see takes comments (a draft's existence doesn't leak).
            rows = await fetch_dicts(
                "UPDATE articles SET comment_seq = comment_seq + 1, "
                f"comment_count = comment_count + 1 WHERE id = ? AND {_VISIBLE_ROW} "
                "RETURNING comment_seq",
                (article_id, now),
                conn,
            )
            if not rows:
                raise not_found("There is no such article.", "articleId")
            sequence = int(rows[0]["comment_seq"])
            comment = await models.Comment.create(
                article_id=article_id,
                parent_id=parent_id,
                author_id=user.id,
                sequence=sequence,
                body=text,
                body_html=html,
                created_at=now,
                using_db=conn,
            )
        await self.publish(CommentChanged("added", article_id, comment.id, sequence))
        return comment

    async def _live(self, comment_id: int) -> models.Comment:
        """The comment, not deleted, on an article readers see; NOT_FOUND otherwise."""
        comment = await models.Comment.get_or_none(id=comment_id)
        if comment is None or comment.deleted:
            raise not_found("There is no such comment.", "commentId")
        if not await self._shown(comment.article_id):
            raise not_found("There is no such comment.", "commentId")
        return comment

    async def _shown(self, article_id: int) -> bool:
        """Whether readers see the article (published and live)."""
        rows = await fetch_dicts(
            f"SELECT 1 AS shown FROM articles a WHERE a.id = ? AND {_VISIBLE}",
            (article_id, self.clock()),
        )
        return bool(rows)

    async def edit(self, user: models.User, comment_id: int, body: str) -> models.Comment:
        """Change the body (its author only); sets ``edited_at``."""
        comment = await self._live(comment_id)
        if comment.author_id != user.id:
            raise NotAllowed("Only its author can edit a comment.")
        text = self._body(body)
        now = self.clock()
        changed = await execute(
            "UPDATE comments SET body = ?, body_html = ?, edited_at = ? "
            "WHERE id = ? AND deleted = ?",
            (text, render_markdown(text), now, comment_id, False),
        )
        if changed != 1:
            raise not_found("There is no such comment.", "commentId")
        comment = await models.Comment.get(id=comment_id)
        # One statement, committed on its own: published once it has run.
        await self.publish(
            CommentChanged("edited", comment.article_id, comment.id, comment.sequence)
        )
        return comment

    async def delete(self, user: models.User, comment_id: int) -> models.Comment:
        """Soft-delete (its author or a moderator): it keeps its place, replies survive.

        Deleting a deleted comment changes nothing and succeeds (a retried request).
        """
        comment = await models.Comment.get_or_none(id=comment_id)
        if comment is None:
            raise not_found("There is no such comment.", "commentId")
        moderator = at_least(user.role, models.Role.MODERATOR)
        if not moderator and not await self._shown(comment.article_id):
            # A comment of a draft or an archived article: moderators clean up, nobody else.
            raise not_found("There is no such comment.", "commentId")
        if comment.author_id != user.id and not moderator:
            raise NotAllowed("Only its author or a moderator can delete a comment.")
        if comment.deleted:
            return comment
        async with in_transaction() as conn:
            changed = await execute(
                "UPDATE comments SET deleted = ? WHERE id = ? AND deleted = ?",
                (True, comment_id, False),
                conn,
            )
            if changed == 1:
                # Rows are locked in the order every writer uses (comment, parent, article), so
                # a delete and a concurrent reply can't deadlock on PostgreSQL.
                if comment.parent_id is not None:
                    await execute(
                        "UPDATE comments SET reply_count = reply_count - 1 WHERE id = ?",
                        (comment.parent_id,),
                        conn,
                    )
                await execute(
                    "UPDATE articles SET comment_count = comment_count - 1 WHERE id = ?",
                    (comment.article_id,),
                    conn,
                )
        comment = await models.Comment.get(id=comment_id)
        if changed != 1:
            return comment  # a concurrent delete won, and published
        await self.publish(
            CommentChanged("deleted", comment.article_id, comment.id, comment.sequence)
        )
        return comment

    async def report(self, user: models.User, comment_id: int, reason: str) -> models.Comment:
        """Flag a comment for moderators, once per user and comment."""
        text = " ".join(reason.split())
        limit = self.settings.report_reason_max_length
        if not 1 <= len(text) <= limit:
            raise validation(f"A reason is 1 to {limit} characters long.", "reason")
        comment = await self._live(comment_id)
        try:
            async with in_transaction() as conn:
                await models.CommentReport.create(
                    comment_id=comment_id,
                    user_id=user.id,
                    reason=text,
                    created_at=self.clock(),
                    using_db=conn,
                )
                await execute(
                    "UPDATE comments SET report_count = report_count + 1 WHERE id = ?",
                    (comment_id,),
                    conn,
                )
        except IntegrityError as exc:
            raise validation("You have already reported this comment.", "commentId") from exc
        comment.report_count += 1
        return comment
