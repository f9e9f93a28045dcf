"""The accounts' types: users and their roles."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from api.comments.lists import USER_COMMENTS, USER_COMMENTS_ORDER
from api.core.amounts import money
from api.core.connection import connection_field
from api.core.dataloader import then
from api.core.node import Node, to_global_id
from api.core.permissions import require_self_or_admin
from api.core.viewer import VIEWER
from api.markets.leaderboard import Ranking
from api.markets.lists import POSITIONS_BY_USER, POSITIONS_ORDER, TRADES_BY_USER, TRADES_ORDER
from api.markets.loaders import EVERYONE
from db import models

if TYPE_CHECKING:
    from api.comments.types import Comment
    from api.markets.types import Position, Trade

CommentT = Annotated["Comment", strawberry.lazy("api.comments.types")]

PositionT = Annotated["Position", strawberry.lazy("api.markets.types")]
TradeT = Annotated["Trade", strawberry.lazy("api.markets.types")]


@lru_cache(maxsize=4_096)
def initials(name: str) -> str:
    """First letters of the first and last words: "Oliver Scott" → "OS", "Plato" → "P".
    (Kept per name: a page builds every comment's author, the same few people again and again.)"""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    if not words:
        return ""
    if len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


@strawberry.enum(description="What an account may do; each role includes the ones before it.")
class Role(Enum):
    READER = strawberry.enum_value("READER", description="Reads, comments and trades.")
    AUTHOR = strawberry.enum_value("AUTHOR", description="Also writes articles, creates markets.")
    MODERATOR = strawberry.enum_value("MODERATOR", description="Also moderates comments.")
    ADMIN = strawberry.enum_value("ADMIN", description="Also settles markets; sees balances.")


def _role(stored: Any) -> Role:
    """The schema's role of a stored one (the model's enum member, or its value)."""
    value = stored.value if isinstance(stored, Enum) else stored
    member = Role._value2member_map_.get(value)
    return member if isinstance(member, Role) else Role(value)


def _profit_of(user_id: int, ranking: Ranking) -> Decimal:
    found = ranking.by_user.get(user_id)
    return money(0 if found is None else found[1].profit_cents)


def _rank_of(user_id: int, ranking: Ranking) -> int | None:
    found = ranking.by_user.get(user_id)
    return None if found is None else found[0]


@strawberry.type(description="An account: a reader, staff behind a byline, a moderator or admin.")
class User(Node):
    pk: strawberry.Private[int]
    username: str = strawberry.field(description="The unique login name.")
    display_name: str = strawberry.field(description="The name shown beside comments.")
    initials: str = strawberry.field(description="Up to two letters for an avatar.")
    created_at: datetime = strawberry.field(description="When the account was created.")
    role: Role = strawberry.field(description="What the account may do.")

    @strawberry.field(
        description=(
            "Credits in the wallet: readable by the account itself and admins only (anyone "
            "else gets FORBIDDEN and null)."
        ),
        metadata=VIEWER,
    )
    async def balance(self, info: Info) -> Decimal | None:
        require_self_or_admin(info, self.pk)
        cents = await info.context.loaders.balance_by_user.load(self.pk)
        return None if cents is None else money(cents)

    positions = connection_field(
        PositionT,
        POSITIONS_BY_USER,
        POSITIONS_ORDER,
        description="Holdings with shares or realised profit, newest first.",
    )
    trades = connection_field(
        TradeT,
        TRADES_BY_USER,
        TRADES_ORDER,
        description="Trades, newest first (trading is public).",
    )
    comments = connection_field(
        CommentT,
        USER_COMMENTS,
        USER_COMMENTS_ORDER,
        description=(
            "Comments and replies the account wrote, newest first: those readers see (not "
            "deleted, on a published article)."
        ),
    )

    @strawberry.field(
        description=(
            "Realised plus unrealised profit over every market, as the leaderboard counts it; "
            "0.00 without trades."
        )
    )
    def profit(self, info: Info) -> Decimal:
        return then(
            info.context.loaders.ranking_by_scope.load(EVERYONE),
            partial(_profit_of, self.pk),
        )

    @strawberry.field(
        description=(
            "The place on the leaderboard (1 for the most profitable; ties by volume, then the "
            "older account); null without trades."
        )
    )
    def rank(self, info: Info) -> int | None:
        return then(
            info.context.loaders.ranking_by_scope.load(EVERYONE), partial(_rank_of, self.pk)
        )

    @classmethod
    def from_row(cls, row: models.User) -> User:
        return cls(
            id=strawberry.ID(to_global_id("User", row.id)),
            pk=row.id,
            username=row.username,
            display_name=row.display_name,
            initials=initials(row.display_name),
            created_at=row.created_at,
            role=_role(row.role),
        )
