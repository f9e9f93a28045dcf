"""The hub: routes broker events to groups, and knows every connection (for revocation)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.comments.types import Comment
from api.context import Services
from api.loaders import Loaders
from api.markets.types import Market, OddsUpdate, Trade, outcome_types
from api.schema import AgoraSchema
from logs import get_logger
from realtime.brokers import Broker
from realtime.events import SESSIONS
from realtime.fanout.connection import Connection
from realtime.fanout.group import Group
from realtime.fanout.subscription import Sub
from realtime.protocol.messages import CloseCode
from settings import Settings

logger = get_logger("agora.ws")


class Hub:
    """Routes broker events to groups; knows every connection (for revocation)."""

    def __init__(
        self,
        schema: AgoraSchema,
        settings: Settings,
        services: Services,
        broker: Broker,
        share: bool = True,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.services = services
        self.broker = broker
        # False: every subscription is a group of its own (the benchmark's unshared baseline);
        # read at subscribe time.
        self.share = share
        self.groups: dict[tuple[Any, ...], Group] = {}
        self.by_channel: dict[str, set[Group]] = {}
        self.connections: set[Connection] = set()
        # Replay pages read and rendered at once in this process (see Sub._fill).
        self.replay_slots = asyncio.Semaphore(settings.ws_replays_per_process)
        broker.listen(self.on_event)
        broker.on_reconnect(self.resync)

    # -- membership

    def add(
        self,
        conn: Connection,
        sub_id: str,
        group_key: tuple[Any, ...],
        make_group: Callable[[], Group],
    ) -> Sub:
        """Subscription ``sub_id`` of ``conn``, in the group of ``group_key`` (made if new)."""
        group = self.groups.get(group_key)
        if group is None:
            group = self.groups[group_key] = make_group()
            self.by_channel.setdefault(group.channel, set()).add(group)
        sub = Sub(conn, sub_id, group)
        group.subs.add(sub)
        conn.subs[sub_id] = sub
        return sub

    def remove(self, sub: Sub) -> None:
        """End ``sub``: its catch-up, its unsent coalesced frame, its group once empty."""
        sub.done = True
        if sub.task is not None and not sub.task.done() and sub.task is not asyncio.current_task():
            sub.task.cancel()
        sub.conn.subs.pop(sub.id, None)
        sub.conn.latest.pop(sub.id, None)
        group = sub.group
        group.subs.discard(sub)
        if not group.subs:
            self.groups.pop(group.key, None)
            channel_groups = self.by_channel.get(group.channel)
            if channel_groups is not None:
                channel_groups.discard(group)
                if not channel_groups:
                    del self.by_channel[group.channel]

    # -- events

    async def on_event(self, channel: str, event: dict[str, Any]) -> None:
        """Render ``event`` once per group of its channel and offer it to every subscriber."""
        if channel == SESSIONS:
            self._revoke(event)
            return
        groups = self.by_channel.get(channel)
        if not groups:
            return
        loaders = Loaders()
        roots: dict[str, Any] = {}
        for group in list(groups):
            if group.kind not in roots:
                roots[group.kind] = await self._root(group.kind, group.target, event, loaders)
            root = roots[group.kind]
            if root is None:
                continue
            try:
                payload = await group.render(root, loaders)
            except Exception:  # one group's failure must not cost the others the event
                logger.exception("rendering an event for %s failed", group.channel)
                continue
            seq = event.get("seq")
            for sub in list(group.subs):
                sub.offer(seq if isinstance(seq, int) else None, payload)

    async def _root(self, field: str, target: int, event: dict[str, Any], loaders: Loaders) -> Any:
        if field == "oddsUpdated":
            return await odds_update(target, event.get("seq"), event.get("trade_id"), loaders)
        kind = event.get("kind")
        if (field == "commentAdded") != (kind == "added"):
            return None
        row = await loaders.comment_by_id.load(int(event["comment_id"]))
        if row is None or (field == "commentAdded" and row.deleted):
            return None
        return Comment.from_row(row)

    async def resync(self) -> None:
        """After an outage between processes: fill every comment subscription from the database."""
        for group in list(self.groups.values()):
            if group.kind != "commentAdded":
                continue
            for sub in list(group.subs):
                if not sub.replaying:
                    sub.start_catch_up(sub.last_seq)

    def _revoke(self, event: dict[str, Any]) -> None:
        for conn in list(self.connections):
            if conn.viewer is None:
                continue
            if (event.get("kind") == "token" and conn.token_hash == event.get("token_hash")) or (
                event.get("kind") == "user"
                and conn.viewer.id == event.get("user_id")
                and conn.token_hash != event.get("keep")
            ):
                conn.close(CloseCode.FORBIDDEN, "Forbidden: session revoked")


async def odds_update(
    market_id: int, seq: int | None, trade_id: int | None, loaders: Loaders
) -> OddsUpdate | None:
    """The root object of an oddsUpdated message."""
    market = await loaders.market_by_id.load(market_id)
    if market is None:
        return None
    outcomes = await loaders.outcomes_by_market.load(market_id)
    trade = await loaders.trade_by_id.load(trade_id) if trade_id else None
    return OddsUpdate(
        market=Market.from_row(market),
        outcomes=outcome_types(market, outcomes),
        seq=market.odds_seq if seq is None else seq,
        at=datetime.now(UTC),
        last_trade=Trade.from_row(trade) if trade else None,
    )
