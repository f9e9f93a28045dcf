"""Tortoise models: the news graph, comments, accounts and markets.

Money and shares are integers: cents and ten-thousandths of a share (Tortoise's DecimalField is
text on SQLite, and arithmetic updates turn it into a float). Many-to-many links are explicit
models so that DataLoaders can batch them with one query keyed by either side.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    """What an account may do; each role includes the ones before it."""

    READER = "READER"
    AUTHOR = "AUTHOR"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


class MarketState(StrEnum):
    """The stored state of a market. CLOSED is derived: OPEN and past ``closes_at``."""

    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    CANCELLED = "CANCELLED"


class ArticleState(StrEnum):
    """The stored state of an article. SCHEDULED is derived: PUBLISHED with ``published_at``
    still in the future. Readers see an article only while it is PUBLISHED and
    ``published_at <= now`` (:func:`visible_sql`), computed in every query: no job flips it."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


def visible_sql(alias: str) -> str:
    """The SQL condition "readers can see article ``alias``"; its one parameter is now."""
    return f"({alias}.state = 'PUBLISHED' AND {alias}.published_at <= ?)"


class User(Model):
    """An account: a reader, a staff member behind a byline, a moderator or an admin."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=32, unique=True)
    display_name = fields.CharField(max_length=80)
    password_hash = fields.CharField(max_length=255, default="")
    role = fields.CharEnumField(Role, max_length=16, default=Role.READER)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class Author(Model):
    """A byline. Optionally backed by a staff account."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=120, unique=True)
    name = fields.CharField(max_length=120)
    bio = fields.TextField(null=True)
    user: fields.OneToOneNullableRelation[User] = fields.OneToOneField(
        "models.User", related_name="author_profile", null=True, on_delete=fields.SET_NULL
    )
    user_id: int | None

    class Meta:
        table = "authors"


class Category(Model):
    """A node of the category tree (Politics › Diplomacy › Bilateral Relations)."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=120, unique=True)
    name = fields.CharField(max_length=120)
    parent: fields.ForeignKeyNullableRelation[Category] = fields.ForeignKeyField(
        "models.Category", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    parent_id: int | None
    # Root → self, as ids: "/1/4/9/". Lets a subtree be selected with one LIKE on an index.
    path = fields.CharField(max_length=255, db_index=True)
    depth = fields.SmallIntField(default=0)
    position = fields.IntField(default=0)

    class Meta:
        table = "categories"


class Tag(Model):
    """A topic label shared by articles and markets."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=120, unique=True)
    name = fields.CharField(max_length=120)

    class Meta:
        table = "tags"


class Article(Model):
    """A story: a draft, a published (or scheduled) article, or an archived one."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=200, unique=True)
    title = fields.CharField(max_length=300)
    excerpt = fields.TextField()
    body = fields.TextField()
    word_count = fields.IntField(default=0)
    # When it goes (or went) live; for a draft, when it was created (never shown to readers).
    published_at = fields.DatetimeField(db_index=True)
    updated_at = fields.DatetimeField()
    # A database default too: the column was added to tables that already had articles.
    state = fields.CharEnumField(
        ArticleState, max_length=16, default=ArticleState.PUBLISHED, db_default="PUBLISHED"
    )
    # The first time it was published (its slug is frozen from then on); None: never.
    first_published_at = fields.DatetimeField(null=True)
    # When subscribers were told it went live (articlePublished); None: not yet (a draft, or
    # scheduled: the scheduler's job tells them at its time, once).
    announced_at = fields.DatetimeField(null=True)
    featured = fields.BooleanField(default=False, db_index=True)
    author: fields.ForeignKeyRelation[Author] = fields.ForeignKeyField(
        "models.Author", related_name="articles", on_delete=fields.RESTRICT
    )
    author_id: int
    category: fields.ForeignKeyRelation[Category] = fields.ForeignKeyField(
        "models.Category", related_name="articles", on_delete=fields.RESTRICT
    )
    category_id: int
    # Visible (not deleted) comments, replies included; kept by the comment write path.
    comment_count = fields.IntField(default=0)
    # The last comment sequence handed out on this article.
    comment_seq = fields.IntField(default=0)

    class Meta:
        table = "articles"
        # The readers' lists filter on (state, published_at); related articles and category
        # pages look articles up by category.
        indexes = (("state", "published_at"), ("category_id",))


class ArticleSlug(Model):
    """A slug an article had before its current one: it keeps resolving to the article."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=200, unique=True)
    article: fields.ForeignKeyRelation[Article] = fields.ForeignKeyField(
        "models.Article", related_name="old_slugs", on_delete=fields.CASCADE
    )
    article_id: int
    created_at = fields.DatetimeField()

    class Meta:
        table = "article_slugs"


class ArticleHtml(Model):
    """An article body rendered and sanitised (``Article.bodyHtml``), written with the body in
    the same transaction. A table of its own so lists and pages that don't ask for it don't
    read it (``SELECT a.*`` would carry a second copy of every body)."""

    id = fields.IntField(primary_key=True)
    article: fields.OneToOneRelation[Article] = fields.OneToOneField(
        "models.Article", related_name="html", on_delete=fields.CASCADE
    )
    article_id: int
    html = fields.TextField()

    class Meta:
        table = "article_html"


class ArticleTag(Model):
    """An article carries a tag."""

    id = fields.IntField(primary_key=True)
    article: fields.ForeignKeyRelation[Article] = fields.ForeignKeyField(
        "models.Article", related_name="tag_links", on_delete=fields.CASCADE
    )
    article_id: int
    tag: fields.ForeignKeyRelation[Tag] = fields.ForeignKeyField(
        "models.Tag", related_name="article_links", on_delete=fields.CASCADE
    )
    tag_id: int

    class Meta:
        table = "article_tags"
        unique_together = (("article", "tag"),)
        # A tag's articles (tag pages, related articles, counts); (article, tag) serves the rest.
        indexes = (("tag_id",),)


class Comment(Model):
    """A comment or a reply. Deletion is soft: the comment keeps its place in the thread."""

    id = fields.IntField(primary_key=True)
    article: fields.ForeignKeyRelation[Article] = fields.ForeignKeyField(
        "models.Article", related_name="comments", on_delete=fields.CASCADE
    )
    article_id: int
    parent: fields.ForeignKeyNullableRelation[Comment] = fields.ForeignKeyField(
        "models.Comment", related_name="replies", null=True, on_delete=fields.RESTRICT
    )
    parent_id: int | None
    author: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="comments", on_delete=fields.RESTRICT
    )
    author_id: int
    sequence = fields.IntField()
    body = fields.TextField()
    body_html = fields.TextField()
    created_at = fields.DatetimeField()
    edited_at = fields.DatetimeField(null=True)
    deleted = fields.BooleanField(default=False)
    # Visible direct replies; kept by the comment write path.
    reply_count = fields.IntField(default=0)
    # Reports not yet handled by a moderator (the moderation queue shows those above zero).
    report_count = fields.IntField(default=0)

    class Meta:
        table = "comments"
        unique_together = (("article", "sequence"),)
        # Threads and replies; a profile's comments, newest first.
        indexes = (
            ("article_id", "parent_id", "created_at"),
            ("parent_id", "created_at"),
            ("author_id", "created_at"),
        )


class Market(Model):
    """A prediction market run by an LMSR market maker."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=200, unique=True)
    question = fields.CharField(max_length=300)
    description = fields.TextField()
    resolution_criteria = fields.TextField()
    created_at = fields.DatetimeField()
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="markets_created", null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    state = fields.CharEnumField(MarketState, max_length=16, default=MarketState.OPEN)
    closes_at = fields.DatetimeField(db_index=True)
    resolved_at = fields.DatetimeField(null=True)
    # An Outcome id; a plain column because Market and Outcome would otherwise reference each
    # other. The settlement service is the only writer and checks it belongs to this market.
    resolved_outcome_id = fields.IntField(null=True)
    liquidity_cents = fields.BigIntField()
    volume_cents = fields.BigIntField(default=0)
    trader_count = fields.IntField(default=0)
    # Grows by one with every change of the odds (the oddsUpdated sequence).
    odds_seq = fields.IntField(default=0)

    class Meta:
        table = "markets"


class Outcome(Model):
    """One answer of a market. shares_units is the LMSR quantity q in 1/10,000 shares."""

    id = fields.IntField(primary_key=True)
    market: fields.ForeignKeyRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="outcomes", on_delete=fields.CASCADE
    )
    market_id: int
    position = fields.SmallIntField()
    label = fields.CharField(max_length=120)
    shares_units = fields.BigIntField(default=0)

    class Meta:
        table = "outcomes"
        unique_together = (("market", "position"),)


class MarketArticle(Model):
    """A market is discussed by an article."""

    id = fields.IntField(primary_key=True)
    market: fields.ForeignKeyRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="article_links", on_delete=fields.CASCADE
    )
    market_id: int
    article: fields.ForeignKeyRelation[Article] = fields.ForeignKeyField(
        "models.Article", related_name="market_links", on_delete=fields.CASCADE
    )
    article_id: int

    class Meta:
        table = "market_articles"
        unique_together = (("market", "article"),)


class MarketTag(Model):
    """A market carries a tag."""

    id = fields.IntField(primary_key=True)
    market: fields.ForeignKeyRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="tag_links", on_delete=fields.CASCADE
    )
    market_id: int
    tag: fields.ForeignKeyRelation[Tag] = fields.ForeignKeyField(
        "models.Tag", related_name="market_links", on_delete=fields.CASCADE
    )
    tag_id: int

    class Meta:
        table = "market_tags"
        unique_together = (("market", "tag"),)


class Trade(Model):
    """One executed purchase (shares > 0) or sale (shares < 0)."""

    id = fields.IntField(primary_key=True)
    market: fields.ForeignKeyRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="trades", on_delete=fields.RESTRICT
    )
    market_id: int
    outcome: fields.ForeignKeyRelation[Outcome] = fields.ForeignKeyField(
        "models.Outcome", related_name="trades", on_delete=fields.RESTRICT
    )
    outcome_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="trades", on_delete=fields.RESTRICT
    )
    user_id: int
    shares_units = fields.BigIntField()
    amount_cents = fields.BigIntField()
    probability_before = fields.FloatField()
    probability_after = fields.FloatField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "trades"
        indexes = (("market_id", "created_at"),)


class Session(Model):
    """A login: an opaque bearer token, stored as its SHA-256 (the token itself is never kept)."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sessions"
        # The housekeeping purge of expired sessions (accounts.service.purge_sessions).
        indexes = (("expires_at",),)


class CommentReport(Model):
    """A user flagged a comment for moderators (once per user and comment)."""

    id = fields.IntField(primary_key=True)
    comment: fields.ForeignKeyRelation[Comment] = fields.ForeignKeyField(
        "models.Comment", related_name="reports", on_delete=fields.CASCADE
    )
    comment_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="reports", on_delete=fields.CASCADE
    )
    user_id: int
    reason = fields.CharField(max_length=500)
    created_at = fields.DatetimeField()

    class Meta:
        table = "comment_reports"
        unique_together = (("comment", "user"),)


class AccountKind(StrEnum):
    """Who holds a ledger account."""

    ISSUER = "ISSUER"
    USER = "USER"
    MARKET = "MARKET"


class LedgerAccount(Model):
    """A balance in the double-entry ledger: a user's wallet, a market maker, or the issuer.

    balance_cents is the sum of the account's entries, kept in the same transaction as they are
    written (users' balances never go negative; the issuer's is minus everything it issued).
    """

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(AccountKind, max_length=16)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="ledger_accounts", null=True, on_delete=fields.RESTRICT
    )
    user_id: int | None
    market: fields.ForeignKeyNullableRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="ledger_accounts", null=True, on_delete=fields.RESTRICT
    )
    market_id: int | None
    balance_cents = fields.BigIntField(default=0)

    class Meta:
        table = "ledger_accounts"
        unique_together = (("kind", "user"), ("kind", "market"))


class LedgerTransaction(Model):
    """One movement of money: its entries sum to zero."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    created_at = fields.DatetimeField()
    memo = fields.CharField(max_length=200, default="")

    class Meta:
        table = "ledger_transactions"


class LedgerEntry(Model):
    """One side of a movement: ``amount_cents`` added to (or, negative, taken from) an account."""

    id = fields.IntField(primary_key=True)
    transaction: fields.ForeignKeyRelation[LedgerTransaction] = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="entries", on_delete=fields.RESTRICT
    )
    transaction_id: int
    account: fields.ForeignKeyRelation[LedgerAccount] = fields.ForeignKeyField(
        "models.LedgerAccount", related_name="entries", on_delete=fields.RESTRICT
    )
    account_id: int
    amount_cents = fields.BigIntField()

    class Meta:
        table = "ledger_entries"
        indexes = (("account_id", "id"),)


class Position(Model):
    """A user's holding of one outcome: shares, the average-cost basis, and realised profit.

    A sale removes cost basis pro rata and adds (proceeds − basis removed) to realized_cents.
    settled_value_cents is set when the market settles: the payout (resolution) or the share of
    the refund (cancellation); until then the value follows the market's price.
    """

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="positions", on_delete=fields.RESTRICT
    )
    user_id: int
    market: fields.ForeignKeyRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="positions", on_delete=fields.RESTRICT
    )
    market_id: int
    outcome: fields.ForeignKeyRelation[Outcome] = fields.ForeignKeyField(
        "models.Outcome", related_name="positions", on_delete=fields.RESTRICT
    )
    outcome_id: int
    shares_units = fields.BigIntField(default=0)
    cost_basis_cents = fields.BigIntField(default=0)
    realized_cents = fields.BigIntField(default=0)
    settled_value_cents = fields.BigIntField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "positions"
        unique_together = (("user", "outcome"),)
        indexes = (("market_id", "user_id"),)


class PricePoint(Model):
    """The market's probabilities after a change (creation, each trade, settlement)."""

    id = fields.IntField(primary_key=True)
    market: fields.ForeignKeyRelation[Market] = fields.ForeignKeyField(
        "models.Market", related_name="price_points", on_delete=fields.CASCADE
    )
    market_id: int
    at = fields.DatetimeField()
    # Seconds since the epoch: buckets are at_epoch / interval on both databases.
    at_epoch = fields.BigIntField()
    # JSON list of floats, in the order of the market's outcomes.
    probabilities = fields.TextField()

    class Meta:
        table = "price_points"
        indexes = (("market_id", "at_epoch"),)


class IdempotencyKey(Model):
    """A trade request's key (per user, kept 24 hours) and what it produced."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="idempotency_keys", on_delete=fields.CASCADE
    )
    user_id: int
    key = fields.CharField(max_length=100)
    fingerprint = fields.CharField(max_length=64)
    trade: fields.ForeignKeyRelation[Trade] = fields.ForeignKeyField(
        "models.Trade", related_name="idempotency_keys", on_delete=fields.CASCADE
    )
    trade_id: int
    balance_after_cents = fields.BigIntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_keys"
        unique_together = (("user", "key"),)
        # The housekeeping purge of expired keys (markets.trading.purge_idempotency_keys).
        indexes = (("created_at",),)


class JobState(Model):
    """A housekeeping job's schedule: when its next slot is due and who holds the current run.

    A worker claims a due slot by moving ``next_run_at`` past it in one conditional update, so
    two workers never run the same slot (app.housekeeping, db.housekeeping).
    """

    name = fields.CharField(max_length=64, primary_key=True)
    next_run_at = fields.DatetimeField()
    # The slot of the latest claimed run (the next_run_at it moved past).
    last_due_at = fields.DatetimeField(null=True)
    # Set while a run is in progress: until then no other worker starts the job (a worker that
    # died mid-run holds it no longer than HOUSEKEEPING_LEASE_SECONDS).
    lease_until = fields.DatetimeField(null=True)

    class Meta:
        table = "housekeeping_jobs"


class JobRun(Model):
    """One run of a housekeeping job: its slot, its worker, the rows it changed, its outcome."""

    id = fields.IntField(primary_key=True)
    job = fields.CharField(max_length=64)
    # The slot it ran for: unique per job, a second run of one slot can't be recorded.
    due_at = fields.DatetimeField()
    started_at = fields.DatetimeField(db_index=True)
    finished_at = fields.DatetimeField(null=True)
    # running, ok, error or cancelled (the worker stopped mid-run)
    outcome = fields.CharField(max_length=16)
    rows = fields.BigIntField(default=0)
    # host:pid of the worker that ran it
    worker = fields.CharField(max_length=100)
    # The exception's class and message, cut short, for a run that failed.
    error = fields.CharField(max_length=300, default="")

    class Meta:
        table = "housekeeping_runs"
        unique_together = (("job", "due_at"),)
