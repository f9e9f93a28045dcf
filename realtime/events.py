"""Channel names and the wire form of the domain's events: small messages of ids and sequences.

The domain publishes typed events after its commits; :func:`broker_publisher` is the publisher
the app gives the services, mapping each event to its channel and message for the broker.
"""

from __future__ import annotations

from typing import Any

from accounts.events import SessionRevoked, SessionsRevoked
from comments.events import CommentChanged
from domain_events import Event, Publisher
from markets.events import OddsChanged
from realtime.brokers import Broker

SESSIONS = "sessions"


def comments_channel(article_id: int) -> str:
    """Where an article's comment events go."""
    return f"comments:{article_id}"


def odds_channel(market_id: int) -> str:
    """Where a market's odds changes go."""
    return f"odds:{market_id}"


def to_message(event: Event) -> tuple[str, dict[str, Any]] | None:
    """The (channel, message) of a domain event, or None for an event nobody listens to."""
    match event:
        case CommentChanged():
            return comments_channel(event.article_id), {
                "kind": event.kind,
                "comment_id": event.comment_id,
                "seq": event.sequence,
            }
        case OddsChanged():
            return odds_channel(event.market_id), {"seq": event.seq, "trade_id": event.trade_id}
        case SessionRevoked():
            return SESSIONS, {"kind": "token", "token_hash": event.token_hash}
        case SessionsRevoked():
            return SESSIONS, {
                "kind": "user",
                "user_id": event.user_id,
                "keep": event.keep_token_hash,
            }
    return None


def broker_publisher(broker: Broker) -> Publisher:
    """A publisher handing each event to ``broker`` on its channel."""

    async def publish(event: Event) -> None:
        message = to_message(event)
        if message is not None:
            await broker.publish(*message)

    return publish
