"""The root Mutation type: accounts and comments (markets come with trading).

Resolvers are thin: check access, decode IDs, call a domain service, and turn a ``Refusal``
into ``errors: [UserError!]!`` with the result fields null.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry
from strawberry.types import Info

from api.accounts.types import User
from api.comments.types import Comment
from api.core.amounts import money, to_cents, to_share_units
from api.core.errors import Forbidden
from api.core.node import from_global_id
from api.core.permissions import require_role, require_viewer
from api.markets.types import Market, Position, Trade
from comments.service import NotAllowed
from db import models
from markets.trading import TradeResult
from refusals import Refusal, RefusalCode

T = TypeVar("T")


# Declared where the field is defined: at most MAX_EXPENSIVE_FIELDS of these in one document
# (password hashing, trades and settlements each cost far more than a read).
EXPENSIVE = {"expensive": True}


# Generated from the domain's codes: their names, order and descriptions are the schema's.
# Type checkers can't follow an Enum built from a mapping; to them it is the domain's enum.
if TYPE_CHECKING:
    from refusals import RefusalCode as ErrorCode
else:
    ErrorCode = strawberry.enum(
        Enum(
            "ErrorCode",
            {
                code.name: strawberry.enum_value(code.value, description=code.description)
                for code in RefusalCode
            },
        ),
        description="Why a mutation was refused.",
    )


@strawberry.type(description="A business refusal: nothing changed.")
class UserError:
    code: ErrorCode = strawberry.field(description="What kind of refusal.")
    message: str = strawberry.field(description="A sentence to show the user.")
    field: list[str] | None = strawberry.field(
        description='The input field at fault, as a path (e.g. ["body"]), if one is.'
    )
    retry_after_seconds: int | None = strawberry.field(
        description="With RATE_LIMITED: seconds until the next attempt can succeed."
    )


def user_error(refusal: Refusal) -> UserError:
    """The payload form of a domain refusal."""
    return UserError(
        code=ErrorCode[refusal.code],
        message=refusal.message,
        field=refusal.field,
        retry_after_seconds=refusal.retry_after_seconds,
    )


@strawberry.type(description="The result of signUp, logIn and changePassword.")
class AuthPayload:
    token: str | None = strawberry.field(
        description="The bearer token: send `Authorization: Bearer <token>`. Shown once."
    )
    expires_at: datetime | None = strawberry.field(description="When the token stops working.")
    user: User | None = strawberry.field(description="The account.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


@strawberry.type(description="The result of a comment mutation.")
class CommentPayload:
    comment: Comment | None = strawberry.field(description="The comment, as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


@strawberry.type(description="The result of buyShares and sellShares.")
class TradePayload:
    trade: Trade | None = strawberry.field(description="The trade (the first one, on a replay).")
    position: Position | None = strawberry.field(description="The position after it.")
    market: Market | None = strawberry.field(description="The market after it.")
    balance: Decimal | None = strawberry.field(description="The wallet's balance right after it.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


@strawberry.type(description="The result of a market mutation.")
class MarketPayload:
    market: Market | None = strawberry.field(description="The market, as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


@strawberry.input(description="Spend credits on an outcome.")
class BuySharesInput:
    outcome_id: strawberry.ID = strawberry.field(description="The outcome to buy.")
    amount: Decimal = strawberry.field(description="Credits to spend exactly (2 places).")
    min_shares: Decimal | None = strawberry.field(
        default=None, description="Slippage guard: refuse if this buys fewer shares."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Your key for this request (24 h): a retry returns the first trade.",
    )


@strawberry.input(description="Sell shares of an outcome.")
class SellSharesInput:
    outcome_id: strawberry.ID = strawberry.field(description="The outcome to sell.")
    shares: Decimal = strawberry.field(description="Shares to sell (4 places).")
    min_amount: Decimal | None = strawberry.field(
        default=None, description="Slippage guard: refuse if the proceeds are less."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Your key for this request (24 h): a retry returns the first trade.",
    )


@strawberry.input(description="A new market (AUTHOR and above).")
class CreateMarketInput:
    question: str = strawberry.field(description="What it asks (10–300 characters).")
    description: str = strawberry.field(description="Background for traders.")
    resolution_criteria: str = strawberry.field(description="Exactly how it will be settled.")
    outcomes: list[str] = strawberry.field(description="2 to 10 distinct answers.")
    closes_at: datetime = strawberry.field(description="When trading stops (future, UTC).")
    liquidity: Decimal = strawberry.field(
        description="The maker's subsidy and maximum loss, at least the minimum (10.00)."
    )
    article_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Articles that discuss it."
    )
    tag_slugs: list[str] = strawberry.field(default_factory=list, description="Its tags.")


@strawberry.input(description="Settle a market on its winning outcome (ADMIN).")
class ResolveMarketInput:
    market_id: strawberry.ID = strawberry.field(description="The market.")
    outcome_id: strawberry.ID = strawberry.field(description="The winning outcome.")


@strawberry.input(description="Call a market off and refund traders (ADMIN).")
class CancelMarketInput:
    market_id: strawberry.ID = strawberry.field(description="The market.")


def _trade_error(error: UserError) -> TradePayload:
    return TradePayload(trade=None, position=None, market=None, balance=None, errors=[error])


def _market_error(error: UserError) -> MarketPayload:
    return MarketPayload(market=None, errors=[error])


async def _trade_call(info: Info, call: Callable[[], Awaitable[TradeResult]]) -> TradePayload:
    try:
        result = await call()
    except Refusal as refusal:
        return _trade_error(user_error(refusal))
    return TradePayload(
        trade=Trade.from_row(result.trade),
        position=Position.from_row(result.position),
        market=Market.from_row(result.market),
        balance=money(result.balance_cents),
        errors=[],
    )


async def _market_call(info: Info, call: Callable[[], Awaitable[models.Market]]) -> MarketPayload:
    try:
        market = await call()
    except Refusal as refusal:
        return _market_error(user_error(refusal))
    return MarketPayload(market=Market.from_row(market), errors=[])


@strawberry.input(description="A new reader account.")
class SignUpInput:
    username: str = strawberry.field(description="3–32 letters, digits or underscores.")
    password: str = strawberry.field(description="8–256 characters.")
    display_name: str = strawberry.field(description="The name shown beside comments.")


@strawberry.input(description="Credentials for a new session.")
class LogInInput:
    username: str = strawberry.field(description="The username (case-insensitive).")
    password: str = strawberry.field(description="The password.")


@strawberry.input(description="A new password for the viewer.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password now.")
    new_password: str = strawberry.field(description="The password from now on.")


@strawberry.input(description="A new comment, or a reply.")
class PostCommentInput:
    article_id: strawberry.ID = strawberry.field(description="The article commented on.")
    body: str = strawberry.field(description="Markdown, 1–10,000 characters after trimming.")
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="The comment replied to (on the same article), if any."
    )


@strawberry.input(description="A new body for the viewer's comment.")
class EditCommentInput:
    comment_id: strawberry.ID = strawberry.field(description="The comment.")
    body: str = strawberry.field(description="The new body.")


@strawberry.input(description="A comment to delete.")
class DeleteCommentInput:
    comment_id: strawberry.ID = strawberry.field(description="The comment.")


@strawberry.input(description="A comment to flag for moderators.")
class ReportCommentInput:
    comment_id: strawberry.ID = strawberry.field(description="The comment.")
    reason: str = strawberry.field(description="Why, in a sentence (1–500 characters).")


def _pk(global_id: strawberry.ID, type_name: str) -> int:
    return from_global_id(str(global_id), type_name)[1]


async def _auth(call: Awaitable[T], on_error: Callable[[UserError], T]) -> T:
    try:
        return await call
    except Refusal as refusal:
        return on_error(user_error(refusal))


def _auth_payload(token: str, expires_at: datetime, user: models.User) -> AuthPayload:
    return AuthPayload(token=token, expires_at=expires_at, user=User.from_row(user), errors=[])


def _auth_error(error: UserError) -> AuthPayload:
    return AuthPayload(token=None, expires_at=None, user=None, errors=[error])


def _comment_error(error: UserError) -> CommentPayload:
    return CommentPayload(comment=None, errors=[error])


async def _comment_call(info: Info, call: Awaitable[models.Comment]) -> CommentPayload:
    try:
        comment = await call
    except Refusal as refusal:
        return _comment_error(user_error(refusal))
    except NotAllowed as exc:
        raise Forbidden(str(exc)) from exc
    return CommentPayload(comment=Comment.from_row(comment), errors=[])


@strawberry.type(description="Every write of the graph.")
class Mutation:
    @strawberry.mutation(
        metadata=EXPENSIVE, description="Create a reader account with 1000.00 credits; logs in."
    )
    async def sign_up(
        self,
        info: Info,
        input: Annotated[SignUpInput, strawberry.argument(description="What to do.")],
    ) -> AuthPayload:
        ctx = info.context

        async def run() -> AuthPayload:
            issued = await ctx.accounts.sign_up(
                input.username, input.password, input.display_name, ctx.client_address
            )
            return _auth_payload(issued.token, issued.expires_at, issued.user)

        return await _auth(run(), _auth_error)

    @strawberry.mutation(
        metadata=EXPENSIVE, description="A new session token for a username and password."
    )
    async def log_in(
        self,
        info: Info,
        input: Annotated[LogInInput, strawberry.argument(description="What to do.")],
    ) -> AuthPayload:
        ctx = info.context

        async def run() -> AuthPayload:
            issued = await ctx.accounts.log_in(input.username, input.password, ctx.client_address)
            return _auth_payload(issued.token, issued.expires_at, issued.user)

        return await _auth(run(), _auth_error)

    @strawberry.mutation(
        description="Revoke the token in use, at once, for HTTP and websockets opened with it."
    )
    async def log_out(self, info: Info) -> bool:
        require_viewer(info)
        return await info.context.accounts.log_out(info.context.token)

    @strawberry.mutation(
        metadata=EXPENSIVE, description="Change the viewer's password; ends their other sessions."
    )
    async def change_password(
        self,
        info: Info,
        input: Annotated[ChangePasswordInput, strawberry.argument(description="What to do.")],
    ) -> AuthPayload:
        viewer = require_viewer(info)
        ctx = info.context

        async def run() -> AuthPayload:
            expires = await ctx.accounts.change_password(
                viewer, ctx.token, input.current_password, input.new_password
            )
            return _auth_payload(ctx.token, expires, viewer)

        return await _auth(run(), _auth_error)

    @strawberry.mutation(description="Comment on an article, or reply to a comment.")
    async def post_comment(
        self,
        info: Info,
        input: Annotated[PostCommentInput, strawberry.argument(description="What to do.")],
    ) -> CommentPayload:
        viewer = require_viewer(info)
        article_id = _pk(input.article_id, "Article")
        parent_id = None if input.parent_id is None else _pk(input.parent_id, "Comment")
        return await _comment_call(
            info, info.context.comments.post(viewer, article_id, input.body, parent_id)
        )

    @strawberry.mutation(description="Change the body of the viewer's own comment.")
    async def edit_comment(
        self,
        info: Info,
        input: Annotated[EditCommentInput, strawberry.argument(description="What to do.")],
    ) -> CommentPayload:
        viewer = require_viewer(info)
        comment_id = _pk(input.comment_id, "Comment")
        return await _comment_call(info, info.context.comments.edit(viewer, comment_id, input.body))

    @strawberry.mutation(
        description="Delete a comment (its author or a moderator); it keeps its place."
    )
    async def delete_comment(
        self,
        info: Info,
        input: Annotated[DeleteCommentInput, strawberry.argument(description="What to do.")],
    ) -> CommentPayload:
        viewer = require_viewer(info)
        comment_id = _pk(input.comment_id, "Comment")
        return await _comment_call(info, info.context.comments.delete(viewer, comment_id))

    @strawberry.mutation(
        metadata=EXPENSIVE,
        description="Spend exactly `amount` on an outcome; the shares are rounded down.",
    )
    async def buy_shares(
        self,
        info: Info,
        input: Annotated[BuySharesInput, strawberry.argument(description="What to do.")],
    ) -> TradePayload:
        viewer = require_viewer(info)
        outcome_id = _pk(input.outcome_id, "Outcome")

        async def run() -> TradeResult:
            amount = to_cents(input.amount, "amount")
            minimum = (
                None
                if input.min_shares is None
                else to_share_units(input.min_shares, "minShares", allow_zero=True)
            )
            return await info.context.services.trading.buy(
                viewer, outcome_id, amount, minimum, input.idempotency_key
            )

        return await _trade_call(info, run)

    @strawberry.mutation(
        metadata=EXPENSIVE, description="Sell shares; the proceeds are rounded down to the cent."
    )
    async def sell_shares(
        self,
        info: Info,
        input: Annotated[SellSharesInput, strawberry.argument(description="What to do.")],
    ) -> TradePayload:
        viewer = require_viewer(info)
        outcome_id = _pk(input.outcome_id, "Outcome")

        async def run() -> TradeResult:
            units = to_share_units(input.shares, "shares")
            minimum = (
                None
                if input.min_amount is None
                else to_cents(input.min_amount, "minAmount", allow_zero=True)
            )
            return await info.context.services.trading.sell(
                viewer, outcome_id, units, minimum, input.idempotency_key
            )

        return await _trade_call(info, run)

    @strawberry.mutation(
        metadata=EXPENSIVE, description="Create a market funded by the house (AUTHOR and above)."
    )
    async def create_market(
        self,
        info: Info,
        input: Annotated[CreateMarketInput, strawberry.argument(description="What to do.")],
    ) -> MarketPayload:
        viewer = require_role(info, models.Role.AUTHOR)
        article_ids = [_pk(gid, "Article") for gid in input.article_ids]

        async def run() -> models.Market:
            return await info.context.services.trading.create_market(
                viewer,
                input.question,
                input.description,
                input.resolution_criteria,
                input.outcomes,
                input.closes_at,
                to_cents(input.liquidity, "liquidity"),
                article_ids,
                input.tag_slugs,
            )

        return await _market_call(info, run)

    @strawberry.mutation(
        metadata=EXPENSIVE,
        description="Resolve a market (ADMIN): each winning share pays 1.00. Repeating it "
        "changes nothing; any other settlement of a settled market is MARKET_NOT_OPEN.",
    )
    async def resolve_market(
        self,
        info: Info,
        input: Annotated[ResolveMarketInput, strawberry.argument(description="What to do.")],
    ) -> MarketPayload:
        require_role(info, models.Role.ADMIN)
        market_id = _pk(input.market_id, "Market")
        outcome_id = _pk(input.outcome_id, "Outcome")
        trading = info.context.services.trading
        return await _market_call(info, lambda: trading.resolve(market_id, outcome_id))

    @strawberry.mutation(
        metadata=EXPENSIVE,
        description="Cancel a market (ADMIN): refunds each trader's net cost when positive.",
    )
    async def cancel_market(
        self,
        info: Info,
        input: Annotated[CancelMarketInput, strawberry.argument(description="What to do.")],
    ) -> MarketPayload:
        require_role(info, models.Role.ADMIN)
        market_id = _pk(input.market_id, "Market")
        trading = info.context.services.trading
        return await _market_call(info, lambda: trading.cancel(market_id))

    @strawberry.mutation(description="Flag a comment for moderators (once per user and comment).")
    async def report_comment(
        self,
        info: Info,
        input: Annotated[ReportCommentInput, strawberry.argument(description="What to do.")],
    ) -> CommentPayload:
        viewer = require_viewer(info)
        comment_id = _pk(input.comment_id, "Comment")

        async def run() -> models.Comment:
            return await info.context.comments.report(viewer, comment_id, input.reason)

        return await _comment_call(info, run())
