"""The comments' lists as (Source, Ordering) specs: threads, replies, the moderation queue."""

from __future__ import annotations

from api.core.lists import by_time
from api.core.pagination import NOW, Join, Ordering, SortKey, Source
from db import models

COMMENT_ORDERS = {
    "NEWEST": by_time("NEWEST", "c", "created_at", True),
    "OLDEST": by_time("OLDEST", "c", "created_at", False),
    "TOP": Ordering(
        "TOP",
        (
            SortKey("c.reply_count", "int", True),
            SortKey("c.created_at", "datetime", True),
            SortKey("c.id", "int", True),
        ),
    ),
}
REPLIES_ORDER = by_time("OLDEST", "c", "created_at", False)

# Comment authors come with the page (see Join): a thread costs no query per author.
_COMMENT_AUTHOR = Join("u", models.User, "u.id = c.author_id", "user_by_id")
TOP_LEVEL_COMMENTS = Source(
    models.Comment,
    "comments c",
    "c",
    where=(("c.parent_id IS NULL", ()),),
    parent="c.article_id",
    joins=(_COMMENT_AUTHOR,),
)
REPORTED_COMMENTS = Source(
    models.Comment,
    "comments c",
    "c",
    where=(("c.report_count > 0 AND c.deleted = ?", (False,)),),
    joins=(_COMMENT_AUTHOR,),
)
REPORTED_ORDER = Ordering(
    "REPORTED",
    (
        SortKey("c.report_count", "int", True),
        SortKey("c.created_at", "datetime", True),
        SortKey("c.id", "int", True),
    ),
)
REPLIES = Source(models.Comment, "comments c", "c", parent="c.parent_id", joins=(_COMMENT_AUTHOR,))
# A profile's comments: what readers see of them anywhere (not deleted, on an article readers
# can see: ``db.models.visible_sql``), newest first, for one user or many in one statement.
USER_COMMENTS = Source(
    models.Comment,
    "comments c JOIN articles a ON a.id = c.article_id",
    "c",
    where=(("c.deleted = ?", (False,)), (models.visible_sql("a"), (NOW,))),
    parent="c.author_id",
)
USER_COMMENTS_ORDER = COMMENT_ORDERS["NEWEST"]
