"""Channel names and event shapes: small messages of ids and sequence numbers."""

from __future__ import annotations

from typing import Any

from accounts.service import token_hash
from comments.service import CommentEvent
from markets.trading import OddsEvent

SESSIONS = "sessions"


def comments_channel(article_id: int) -> str:
    """Where an article's comment events go."""
    return f"comments:{article_id}"


def odds_channel(market_id: int) -> str:
    """Where a market's odds changes go."""
    return f"odds:{market_id}"


def to_message(event: Any) -> tuple[str, dict[str, Any]] | None:
    """The (channel, message) of a domain event, or None for an event nobody listens to."""
    if isinstance(event, CommentEvent):
        return comments_channel(event.article_id), {
            "kind": event.kind,
            "comment_id": event.comment_id,
            "seq": event.sequence,
        }
    if isinstance(event, OddsEvent):
        return odds_channel(event.market_id), {"seq": event.seq, "trade_id": event.trade_id}
    if isinstance(event, tuple) and event and event[0] == "session-revoked":
        return SESSIONS, {"kind": "token", "token_hash": token_hash(event[1])}
    if isinstance(event, tuple) and event and event[0] == "sessions-revoked":
        return SESSIONS, {"kind": "user", "user_id": event[1], "keep": token_hash(event[2])}
    return None
