"""Listing a market: checking a new market's inputs and creating it with its house funding."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from db import models
from db.search import MARKERS_REFUSED, holds_markers
from markets import ledger
from markets.pricing import CENTS_PER_CREDIT, MAX_TRADE_CENTS
from markets.store import record_price
from refusals import not_found, validation
from settings import Settings


async def create_market(
    settings: Settings,
    now: datetime,
    user: models.User,
    question: str,
    description: str,
    resolution_criteria: str,
    outcomes: list[str],
    closes_at: datetime,
    liquidity_cents: int,
    article_ids: list[int],
    tag_slugs: list[str],
) -> models.Market:
    """A new market funded by the issuer with ``liquidity_cents``, created at ``now``.

    Its inputs are checked first (VALIDATION / NOT_FOUND refusals change nothing); a slug taken
    by a market with the same question gets a numbered suffix.
    """
    question = " ".join(question.split())
    if not 10 <= len(question) <= 300:
        raise validation("A question is 10 to 300 characters.", "question")
    if holds_markers(question):
        raise validation(f"A question {MARKERS_REFUSED}.", "question")
    description = description.strip()
    if len(description) > 10_000:
        raise validation("A description is at most 10,000 characters.", "description")
    if holds_markers(description):
        raise validation(f"A description {MARKERS_REFUSED}.", "description")
    criteria = resolution_criteria.strip()
    if not 1 <= len(criteria) <= 10_000:
        raise validation("Resolution criteria are 1 to 10,000 characters.", "resolutionCriteria")
    labels = [" ".join(label.split()) for label in outcomes]
    if not 2 <= len(labels) <= 10:
        raise validation("A market has 2 to 10 outcomes.", "outcomes")
    if any(not 1 <= len(label) <= 120 for label in labels):
        raise validation("An outcome label is 1 to 120 characters.", "outcomes")
    if len({label.lower() for label in labels}) != len(labels):
        raise validation("Outcome labels must differ.", "outcomes")
    if closes_at.tzinfo is None:
        raise validation("closesAt needs a time zone (use UTC: …Z).", "closesAt")
    try:
        # Stored in UTC: a time whose UTC is past year 9999 (9999-12-31T23:00-05:00) has none.
        closes_at = closes_at.astimezone(UTC)
    except OverflowError:
        raise validation("closesAt is out of range.", "closesAt") from None
    if closes_at <= now:
        raise validation("closesAt must be in the future.", "closesAt")
    minimum = settings.min_market_liquidity_cents
    if not minimum <= liquidity_cents <= MAX_TRADE_CENTS:
        raise validation(f"Liquidity is at least {minimum / CENTS_PER_CREDIT:.2f}.", "liquidity")
    if len(article_ids) > 20 or len(tag_slugs) > 20:
        raise validation("At most 20 articles and 20 tags.", "articleIds")
    article_ids = list(dict.fromkeys(article_ids))
    tag_slugs = list(dict.fromkeys(tag_slugs))
    # Articles readers see: a draft's id answers as one that doesn't exist (and can't be linked).
    found_articles = await models.Article.filter(
        id__in=article_ids, state=models.ArticleState.PUBLISHED, published_at__lte=now
    ).count()
    if found_articles != len(article_ids):
        raise not_found("One of the articles does not exist.", "articleIds")
    # A slug longer than the column names no tag (and Tortoise refuses to send it).
    tag_slug_length = getattr(models.Tag._meta.fields_map["slug"], "max_length", 120)
    storable = [slug for slug in tag_slugs if len(slug) <= tag_slug_length]
    tags = await models.Tag.filter(slug__in=storable) if storable else []
    if len(tags) != len(tag_slugs):
        raise not_found("One of the tags does not exist.", "tagSlugs")
    base_slug = slugify(question)

    async def attempt(suffix: str) -> models.Market:
        async with in_transaction() as conn:
            market = await models.Market.create(
                slug=(base_slug + suffix)[:200],
                question=question,
                description=description,
                resolution_criteria=criteria,
                created_at=now,
                created_by_id=user.id,
                state=models.MarketState.OPEN,
                closes_at=closes_at,
                liquidity_cents=liquidity_cents,
                using_db=conn,
            )
            await models.Outcome.bulk_create(
                [
                    models.Outcome(market_id=market.id, position=i, label=label)
                    for i, label in enumerate(labels)
                ],
                using_db=conn,
            )
            await models.MarketArticle.bulk_create(
                [models.MarketArticle(market_id=market.id, article_id=a) for a in article_ids],
                using_db=conn,
            )
            await models.MarketTag.bulk_create(
                [models.MarketTag(market_id=market.id, tag_id=t.id) for t in tags],
                using_db=conn,
            )
            await ledger.fund_market(conn, market.id, liquidity_cents, now)
            await record_price(conn, market.id, [1 / len(labels)] * len(labels), now)
            return market

    for n in range(1, 50):
        try:
            market = await attempt("" if n == 1 else f"-{n}")
        except IntegrityError:
            taken = (base_slug + ("" if n == 1 else f"-{n}"))[:200]
            if await models.Market.filter(slug=taken).exists():
                continue
            raise
        return market
    raise validation("Too many markets ask this question.", "question")


def slugify(text: str) -> str:
    """A URL name from a question: lowercase ASCII words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:180] or "market"
