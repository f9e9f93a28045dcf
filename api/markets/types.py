"""The markets' types: markets, outcomes, trades, positions, quotes, standings, odds updates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

import clock
from api.core.amounts import money, shares
from api.core.connection import connection_field
from api.core.dataloader import then
from api.core.node import Node, row_converter, to_global_id
from api.core.viewer import VIEWER
from api.markets.lists import TRADES_BY_MARKET, TRADES_ORDER
from db import models
from markets import pricing
from news.service import visible_now

if TYPE_CHECKING:
    from api.accounts.types import User
    from api.news.types import Article, Tag

UserT = Annotated["User", strawberry.lazy("api.accounts.types")]
ArticleT = Annotated["Article", strawberry.lazy("api.news.types")]
TagT = Annotated["Tag", strawberry.lazy("api.news.types")]
TradeT = Annotated["Trade", strawberry.lazy("api.markets.types")]
user_from_row = row_converter(UserT)
article_from_row = row_converter(ArticleT)
tag_from_row = row_converter(TagT)


@strawberry.enum(description="The life cycle of a market.")
class MarketStatus(Enum):
    OPEN = strawberry.enum_value("OPEN", description="Trading.")
    CLOSED = strawberry.enum_value(
        "CLOSED", description="Past `closesAt`, not yet resolved or cancelled: no trading."
    )
    RESOLVED = strawberry.enum_value(
        "RESOLVED", description="Settled: each share of `resolvedOutcome` paid 1.00."
    )
    CANCELLED = strawberry.enum_value(
        "CANCELLED", description="Called off: traders' net costs were refunded."
    )


@strawberry.enum(description="Orders of a market list.")
class MarketOrder(Enum):
    TRENDING = strawberry.enum_value(
        "TRENDING", description="Most volume traded in the last 24 hours, then newest."
    )
    NEWEST = strawberry.enum_value("NEWEST", description="Latest created first.")
    CLOSING_SOON = strawberry.enum_value(
        "CLOSING_SOON",
        description="Open markets closing soonest first; closed and settled ones after.",
    )
    VOLUME = strawberry.enum_value("VOLUME", description="Most volume traded ever first.")


@strawberry.enum(description="Bucket sizes of a price history.")
class HistoryInterval(Enum):
    MINUTE = strawberry.enum_value("MINUTE", description="One point a minute.")
    HOUR = strawberry.enum_value("HOUR", description="One point an hour.")
    DAY = strawberry.enum_value("DAY", description="One point a day.")


@strawberry.type(description="One answer of a market, with its current probability.")
class Outcome(Node):
    pk: strawberry.Private[int]
    market_id: strawberry.Private[int]
    label: str = strawberry.field(description='The answer: "Yes", "No", a candidate\'s name…')
    probability: float = strawberry.field(
        description="The market's current probability of this answer, in [0, 1]."
    )

    @strawberry.field(description="The market it belongs to.")
    async def market(self, info: Info) -> Market:
        return Market.from_row(await info.context.loaders.market_by_id.load(self.market_id))


def market_status(row: models.Market, now: datetime | None = None) -> MarketStatus:
    """The public status of a market row (the rule is the domain's: ``pricing.market_status``)."""
    state = row.state.value if isinstance(row.state, Enum) else str(row.state)
    return MarketStatus[pricing.market_status(state, row.closes_at, now or clock.now()).value]


def outcome_types(market: models.Market, outcomes: list[models.Outcome]) -> list[Outcome]:
    """The outcomes with their probabilities (``pricing.probabilities``)."""
    probs = pricing.probabilities(market, outcomes)
    return [
        Outcome(
            id=strawberry.ID(to_global_id("Outcome", o.id)),
            pk=o.id,
            market_id=market.id,
            label=o.label,
            probability=p,
        )
        for o, p in zip(outcomes, probs, strict=True)
    ]


@strawberry.type(description="A prediction market run by an automated market maker (LMSR).")
class Market(Node):
    pk: strawberry.Private[int]
    row: strawberry.Private[models.Market]
    slug: str = strawberry.field(description="The URL name: /markets/<slug>.")
    question: str = strawberry.field(description="What the market asks.")
    description: str = strawberry.field(description="Background for traders.")
    resolution_criteria: str = strawberry.field(description="Exactly how it will be settled.")
    created_at: datetime = strawberry.field(description="When it was created.")
    closes_at: datetime = strawberry.field(description="When trading stops.")
    resolved_at: datetime | None = strawberry.field(description="When it was settled, if it was.")
    liquidity: Decimal = strawberry.field(
        description="The market maker's subsidy, which is also its maximum loss."
    )
    volume: Decimal = strawberry.field(description="Credits traded, buys and sells.")
    trader_count: int = strawberry.field(description="Distinct accounts that have traded.")

    @classmethod
    def from_row(cls, row: models.Market) -> Market:
        return cls(
            id=strawberry.ID(to_global_id("Market", row.id)),
            pk=row.id,
            row=row,
            slug=row.slug,
            question=row.question,
            description=row.description,
            resolution_criteria=row.resolution_criteria,
            created_at=row.created_at,
            closes_at=row.closes_at,
            resolved_at=row.resolved_at,
            liquidity=money(row.liquidity_cents),
            volume=money(row.volume_cents),
            trader_count=row.trader_count,
        )

    @strawberry.field(description="OPEN, CLOSED (past closesAt, unsettled), RESOLVED or CANCELLED.")
    def status(self) -> MarketStatus:
        return market_status(self.row)

    @strawberry.field(description="Who created it; null for the house.")
    async def created_by(self, info: Info) -> UserT | None:
        user_id = self.row.created_by_id
        if user_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(user_id)
        return user_from_row(row) if row else None

    @strawberry.field(
        description="2 to 10 answers; probabilities sum to 1 (after resolution: 1 and 0s)."
    )
    def outcomes(self, info: Info) -> list[Outcome]:
        return then(
            info.context.loaders.outcomes_by_market.load(self.pk),
            lambda rows: outcome_types(self.row, rows),
        )

    @strawberry.field(description="The winning answer once resolved.")
    async def resolved_outcome(self, info: Info) -> Outcome | None:
        if self.row.resolved_outcome_id is None:
            return None
        rows = await info.context.loaders.outcomes_by_market.load(self.pk)
        for outcome in outcome_types(self.row, rows):
            if outcome.pk == self.row.resolved_outcome_id:
                return outcome
        return None

    @strawberry.field(description="Published articles that discuss this market, newest first.")
    async def articles(self, info: Info) -> list[ArticleT]:
        rows = await info.context.loaders.articles_by_market.load(self.pk)
        moment = clock.now()
        return [article_from_row(row) for row in rows if visible_now(row, moment)]

    trades = connection_field(
        TradeT, TRADES_BY_MARKET, TRADES_ORDER, description="Trades on this market, newest first."
    )

    @strawberry.field(
        metadata={"max_items": 1000},  # what the query limits count it as
        description=(
            "The probabilities over time: the last point of each interval since `since` "
            "(default: the market's creation), at most 1000 points, kept after settlement."
        ),
    )
    async def price_history(
        self,
        info: Info,
        since: Annotated[
            datetime | None, strawberry.argument(description="The earliest time wanted.")
        ] = None,
        interval: Annotated[
            HistoryInterval, strawberry.argument(description="The bucket size.")
        ] = HistoryInterval.HOUR,
    ) -> list[PricePoint]:
        start = epoch_seconds(since) if since is not None else 0
        seconds = {"MINUTE": 60, "HOUR": 3600, "DAY": 86400}[interval.name]
        rows = await info.context.loaders.price_history_by_market.load((self.pk, start, seconds))
        return [PricePoint(at=row.at, probabilities=json.loads(row.probabilities)) for row in rows]

    @strawberry.field(
        description="The viewer's positions in this market; [] when anonymous.", metadata=VIEWER
    )
    async def viewer_position(self, info: Info) -> list[Position]:
        viewer = info.context.viewer
        if viewer is None:
            return []
        rows = await info.context.loaders.positions_by_user_market.load((viewer.id, self.pk))
        return [Position.from_row(row) for row in rows]

    @strawberry.field(description="The market's tags, by name.")
    async def tags(self, info: Info) -> list[TagT]:
        return [
            tag_from_row(row) for row in await info.context.loaders.tags_by_market.load(self.pk)
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds from the epoch to ``moment``, a time without an offset read as UTC.

    Not ``moment.timestamp()``: that reads an offset-less time in the server's local zone, and
    fails (ValueError) on one in year 1, which a client may send.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(seconds=1)


@strawberry.type(description="The probabilities of a market at a moment.")
class PricePoint:
    at: datetime = strawberry.field(description="When the last change in this bucket happened.")
    probabilities: list[float] = strawberry.field(
        description="One per outcome, in the order of Market.outcomes."
    )


async def _outcome_probability(info: Info, market_id: int, outcome_id: int) -> float:
    market = await info.context.loaders.market_by_id.load(market_id)
    rows = await info.context.loaders.outcomes_by_market.load(market_id)
    for outcome in outcome_types(market, rows):
        if outcome.pk == outcome_id:
            return outcome.probability
    return 0.0


@strawberry.type(description="One executed purchase or sale.")
class Trade(Node):
    pk: strawberry.Private[int]
    market_id: strawberry.Private[int]
    outcome_id: strawberry.Private[int]
    user_id: strawberry.Private[int]
    shares: Decimal = strawberry.field(description="Shares: > 0 bought, < 0 sold.")
    amount: Decimal = strawberry.field(description="Credits paid (> 0) or received (< 0).")
    probability_before: float = strawberry.field(description="The outcome's probability before.")
    probability_after: float = strawberry.field(description="The outcome's probability after.")
    created_at: datetime = strawberry.field(description="When it executed.")

    @classmethod
    def from_row(cls, row: models.Trade) -> Trade:
        return cls(
            id=strawberry.ID(to_global_id("Trade", row.id)),
            pk=row.id,
            market_id=row.market_id,
            outcome_id=row.outcome_id,
            user_id=row.user_id,
            shares=shares(row.shares_units),
            amount=money(row.amount_cents),
            probability_before=row.probability_before,
            probability_after=row.probability_after,
            created_at=row.created_at,
        )

    @strawberry.field(description="The market traded.")
    async def market(self, info: Info) -> Market:
        return Market.from_row(await info.context.loaders.market_by_id.load(self.market_id))

    @strawberry.field(description="The outcome bought or sold.")
    async def outcome(self, info: Info) -> Outcome:
        return await _outcome(info, self.market_id, self.outcome_id)

    @strawberry.field(description="Who traded (trading is public).")
    async def user(self, info: Info) -> UserT:
        return user_from_row(await info.context.loaders.user_by_id.load(self.user_id))


async def _outcome(info: Info, market_id: int, outcome_id: int) -> Outcome:
    market = await info.context.loaders.market_by_id.load(market_id)
    rows = await info.context.loaders.outcomes_by_market.load(market_id)
    return next(o for o in outcome_types(market, rows) if o.pk == outcome_id)


@strawberry.type(description="A user's holding of one outcome.")
class Position:
    row: strawberry.Private[models.Position]
    shares: Decimal = strawberry.field(description="Shares held.")
    cost_basis: Decimal = strawberry.field(
        description="What the shares held cost, at average cost: a sale reduces it pro rata."
    )

    @classmethod
    def from_row(cls, row: models.Position) -> Position:
        return cls(row=row, shares=shares(row.shares_units), cost_basis=money(row.cost_basis_cents))

    @strawberry.field(description="The market.")
    async def market(self, info: Info) -> Market:
        return Market.from_row(await info.context.loaders.market_by_id.load(self.row.market_id))

    @strawberry.field(description="The outcome held.")
    async def outcome(self, info: Info) -> Outcome:
        return await _outcome(info, self.row.market_id, self.row.outcome_id)

    async def _value_cents(self, info: Info) -> int:
        p = await _outcome_probability(info, self.row.market_id, self.row.outcome_id)
        return pricing.position_value_cents(self.row.shares_units, self.row.settled_value_cents, p)

    @strawberry.field(
        description=(
            "shares × probability, rounded down to the cent; after resolution shares × payout, "
            "after cancellation the refund."
        )
    )
    async def value(self, info: Info) -> Decimal:
        return money(await self._value_cents(info))

    @strawberry.field(description="value − costBasis + profit already realised by sales.")
    async def profit(self, info: Info) -> Decimal:
        value = await self._value_cents(info)
        return money(value - self.row.cost_basis_cents + self.row.realized_cents)


@strawberry.type(description="A preview of a trade at the current prices: nothing changes.")
class Quote:
    outcome: Outcome = strawberry.field(description="The outcome.")
    shares: Decimal = strawberry.field(description="Shares the trade would buy or sell.")
    amount: Decimal = strawberry.field(description="Credits it would cost or return.")
    average_price: float = strawberry.field(description="amount / shares.")
    probability_before: float = strawberry.field(description="The outcome's probability now.")
    probability_after: float = strawberry.field(description="Its probability after the trade.")


@strawberry.type(description="A trader's standing.")
class LeaderboardEntry:
    rank: int = strawberry.field(description="1 for the most profitable.")
    user: UserT = strawberry.field(description="The trader.")
    profit: Decimal = strawberry.field(description="Realised plus unrealised profit.")
    volume: Decimal = strawberry.field(description="Credits traded, buys and sells.")


@strawberry.type(description="The odds of a market after a change.")
class OddsUpdate:
    market: Market = strawberry.field(description="The market, as it is now.")
    outcomes: list[Outcome] = strawberry.field(description="Its outcomes with probabilities.")
    seq: int = strawberry.field(
        description="Grows by one with every change of this market's odds (gaps: coalesced)."
    )
    at: datetime = strawberry.field(description="When this update was sent.")
    last_trade: Trade | None = strawberry.field(
        description="The trade that moved the odds; null for the first message or a settlement."
    )
