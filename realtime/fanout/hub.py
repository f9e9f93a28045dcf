"""The hub: routes broker events to groups, and knows every connection (for revocation)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError

from logs import get_logger
from realtime.brokers import Broker
from realtime.events import SESSIONS
from realtime.fanout.connection import Connection
from realtime.fanout.gctuning import GCTuning
from realtime.fanout.group import Group
from realtime.fanout.subscription import KEPT, REPLACED, Sub
from realtime.ports import FindSession, GraphQLLayer, ResolveQuery, as_sent
from realtime.protocol.messages import CloseCode
from realtime.sources import SubscriptionSource, sources_of
from settings import Settings

logger = get_logger("agora.ws")

# Close code 1012 (Service Restart): the server is shutting down. Its websockets close with it
# and its HTTP streams end with an error of this name, so clients reconnect (to another
# instance) and resume with afterSequence.
SERVICE_RESTART = 1012
RESTART_REASON = "Service restart: reconnect and resume with afterSequence"


class LazyLoaders:
    """An event's loaders, made by ``make`` on first use (any attribute read), then that one
    set for every root and group of the event."""

    __slots__ = ("_made", "_make", "_when_made")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._made: Any = None
        self._when_made: list[Callable[[Any], None]] = []

    def __getattr__(self, name: str) -> Any:
        made = self._made
        if made is None:
            made = self._made = self._make()
            waiting, self._when_made = self._when_made, []
            for call in waiting:
                call(made)
        return getattr(made, name)

    def on_made(self, call: Callable[[Any], None]) -> None:
        """``call(loaders)`` once they are made (at once if they are): a root built from rows
        an event carries primes them so, and a field reading one sees the same rows."""
        if self._made is not None:
            call(self._made)
        else:
            self._when_made.append(call)

    def release(self) -> None:
        """Let go of the loaders, if made (their own ``release``, when they have one: the
        GraphQL layer's break their reference cycles)."""
        made, self._made = self._made, None
        release = getattr(made, "release", None)
        if callable(release):
            release()


class Hub:
    """Routes broker events to groups; knows every connection (for revocation).

    The app hands it what the GraphQL layer lends (``graphql``: the schema, contexts, checks,
    errors) and how to find a token's session: realtime imports neither.
    """

    # The app's collector tuning, told of every subscription made and ended (none: untuned).
    gc_tuning: GCTuning | None = None

    def __init__(
        self,
        graphql: GraphQLLayer,
        settings: Settings,
        broker: Broker,
        find_session: FindSession,
        share: bool = True,
        resolve_query: ResolveQuery = as_sent,
        gc_tuning: GCTuning | None = None,
    ) -> None:
        self.graphql = graphql
        # Persisted queries and trusted documents, as HTTP applies them.
        self.resolve_query = resolve_query
        self.settings = settings
        self.broker = broker
        self.find_session = find_session
        # What each subscription field does, read from the schema's field metadata.
        self.sources: dict[str, SubscriptionSource[Any]] = sources_of(graphql.schema)
        # False: every subscription is a group of its own (the benchmark's unshared baseline);
        # read at subscribe time.
        self.share = share
        self.groups: dict[tuple[Any, ...], Group] = {}
        self.by_channel: dict[str, set[Group]] = {}
        self.connections: set[Connection] = set()
        # Replay pages read and rendered at once in this process (see Sub._fill).
        self.replay_slots = asyncio.Semaphore(settings.ws_replays_per_process)
        # Set when the server drains (graceful shutdown): no new socket or stream is served.
        self.draining = False
        # Freezes the collector's objects after bulk subscribes (realtime.fanout.gctuning);
        # the app's, which also tunes it after start-up.
        self.gc_tuning = gc_tuning
        broker.listen(self.on_event)
        broker.on_reconnect(self.resync)

    def formatted(self, errors: list[GraphQLError]) -> list[Any]:
        """``errors`` as a payload's: coded, the unexpected masked (and logged)."""
        return [error.formatted for error in self.graphql.format_errors(errors)]

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
            group.meters.groups.inc()
        sub = Sub(conn, sub_id, group)
        group.subs.add(sub)
        group.meters.subscriptions.inc()
        conn.subs[sub_id] = sub
        if self.gc_tuning is not None:
            self.gc_tuning.subscribed()
        return sub

    def remove(self, sub: Sub) -> None:
        """End ``sub``: its catch-up, its unsent coalesced frame, its group once empty."""
        sub.done = True
        if sub.task is not None and not sub.task.done() and sub.task is not asyncio.current_task():
            sub.task.cancel()
        sub.conn.subs.pop(sub.id, None)
        sub.conn.latest.pop(sub.id, None)
        group = sub.group
        if sub in group.subs:  # once, however many ways it ends
            group.subs.discard(sub)
            group.meters.subscriptions.dec()
            if self.gc_tuning is not None:
                self.gc_tuning.unsubscribed()
        if not group.subs:
            if self.groups.get(group.key) is group:
                del self.groups[group.key]
                group.meters.groups.dec()
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
        # Made only if a root or a resolver reads one: an event that carries its state (a
        # trade's odds) and a selection of plain fields read none, and a full set of loaders
        # (every domain's, ~30 DataLoaders) was a quarter of an odds event's fan-out.
        loaders = LazyLoaders(self.graphql.loaders)
        # One root per source and target: the groups of one field share the event's object.
        roots: dict[tuple[SubscriptionSource[Any], Any], Any] = {}
        # A copy: the awaits below let other tasks add and remove groups of the channel.
        for group in list(groups):
            source = group.source
            key = (source, group.target)
            if key in roots:
                root = roots[key]
            else:
                root = roots[key] = await source.root(group.target, event, loaders)
            if root is None:
                continue
            try:
                payload = await group.render(root, loaders)
            except Exception:  # one group's failure must not cost the others the event
                logger.exception("rendering an event for %s failed", group.channel)
                continue
            seq = source.sequence(event)
            # One frame str per subscription id (clients mostly use the same): built once, and
            # so encoded and framed once for all sockets (app.wire.text_frame).
            frames: dict[str, str] = {}
            # A copy: an offer can end its subscription (an overflow), which leaves the group.
            offers = [sub.offer(seq, payload, frames) for sub in list(group.subs)]
            # Counted once per group, not per subscriber: thousands of them share the event.
            # (KEPT is 0: the others count; HANDED 1 and REPLACED 2 tell the replaced apart.)
            handed = len(offers) - offers.count(KEPT)
            if handed:
                group.meters.deliveries.inc(handed)
                replaced = offers.count(REPLACED)
                if replaced:
                    group.meters.coalesced.inc(replaced)
        loaders.release()

    async def resync(self) -> None:
        """After an outage between processes: fill every sequenced subscription from its
        source (events published meanwhile never reached this process)."""
        for group in list(self.groups.values()):
            if not group.sequenced:
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
