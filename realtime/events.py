"""Channel names and the wire form of the domain's events: small messages of ids and sequences.

The domain publishes typed events after its commits; :func:`broker_publisher` is the publisher
the app gives the services, mapping each event to its channel and message for the broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.events import SessionRevoked, SessionsRevoked
from comments.events import CommentChanged
from domain_events import Event, Publisher
from markets.events import OddsChanged
from news.events import ArticleChanged
from realtime.brokers import Broker

SESSIONS = "sessions"
# Articles going live (articlePublished): one channel, filtered per subscription.
ARTICLES = "articles"


def comments_channel(article_id: int) -> str:
    """Where an article's comment events go."""
    return f"comments:{article_id}"


def odds_channel(market_id: int) -> str:
    """Where a market's odds changes go."""
    return f"odds:{market_id}"


class LocalMessage(dict[str, Any]):
    """A broker message whose items are all that crosses processes (ids and sequences, as
    every message), and which also carries ``local``, what the writer had at hand, to the
    listeners of the process that published it: the brokers hand them the published object
    itself, and serialise only its items for other processes, whose listeners do without."""

    __slots__ = ("local",)

    def __init__(self, items: dict[str, Any], *, local: Any) -> None:
        super().__init__(items)
        self.local = local


def local_of(message: Mapping[str, Any]) -> Any:
    """What ``message`` carries for this process only (``LocalMessage.local``), or None."""
    return getattr(message, "local", None)


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
            message = {"seq": event.seq, "trade_id": event.trade_id}
            if event.state is None:
                return odds_channel(event.market_id), message
            # The market at ``seq``, for this process's subscribers: their updates are built
            # from the trade's own rows instead of three reads per event.
            return odds_channel(event.market_id), LocalMessage(message, local=event.state)
        case ArticleChanged(kind="published" | "live"):
            return ARTICLES, {"kind": "live", "article_id": event.article_id}
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
