"""One subscription of a connection: in-order delivery, gap filling and paced replays.

A subscription of a sequenced source (``commentAdded``) keeps the last sequence delivered: a gap
(a message lost between processes, say) is filled from the source's replay before going on, a
duplicate is dropped, and ``afterSequence`` replays first while live events wait in a bounded
buffer. A coalesced one (``oddsUpdated``) keeps only the latest unsent frame.

Replays are the one place a single message asks for unbounded work (one socket with 100
``afterSequence: 0`` subscriptions on a long thread once pushed 2.4 GB in 40 s and held everyone's
queries at ~0.9 s), so they are bounded three ways: at most ``ws_replays_per_connection`` run at
once per connection (the others wait their turn), at most ``ws_replays_per_process`` read or
render a page at once in the process, and no page is pushed faster than the connection's writer
drains the queue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import metrics
from logs import get_logger
from realtime.fanout.connection import Connection
from realtime.protocol.messages import coded_error, error, internal_error

if TYPE_CHECKING:
    from realtime.fanout.group import Group

logger = get_logger("agora.ws")


class ReplayLimitReached(Exception):
    """A replay delivered ``ws_replay_limit`` comments: the subscription ends there."""


# What ``Sub.offer`` did with an event; the hub counts deliveries from it, once a group. Plain
# ints: an Enum member's lookup costs more than the rest of an offer, thousands per event.
# Not queued now: dropped (a duplicate, an ended subscription) or kept for later.
KEPT: Final = 0
# A frame queued for the subscriber.
HANDED: Final = 1
# A coalesced frame queued in place of one the subscriber hadn't taken yet.
REPLACED: Final = 2


@dataclass(eq=False)
class Sub:
    """One subscription of a connection."""

    conn: Connection
    id: str
    group: Group
    last_seq: int = 0
    replaying: bool = True
    buffer: list[tuple[int, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    done: bool = False
    # Ended because the client fell behind (the replay metrics say so).
    overflowed: bool = False
    # The group's delivery, read once (its source's: fixed): offer runs once per subscriber
    # and event, and the property chain to the source was a sixth of an offer.
    coalesced: bool = field(init=False)
    sequenced: bool = field(init=False)

    def __post_init__(self) -> None:
        self.prefix, self.suffix = self.conn.wire.data_frame(self.id)
        self.coalesced = self.group.delivery == "coalesced"
        self.sequenced = self.group.sequenced

    def frame(self, payload_json: str, frames: dict[str, str] | None = None) -> str:
        """The data frame of this subscription carrying ``payload_json``; with ``frames`` (one
        event's, keyed by prefix), the one str every subscriber of the same prefix shares."""
        if frames is None:
            return self.prefix + payload_json + self.suffix
        frame = frames.get(self.prefix)
        if frame is None:
            # The suffix follows from the prefix (both are the wire's, for one id).
            frame = frames[self.prefix] = self.prefix + payload_json + self.suffix
        return frame

    def offer(
        self, seq: int | None, payload_json: str, frames: dict[str, str] | None = None
    ) -> int:
        """A rendered event for this subscriber, in the group's order: KEPT, HANDED or REPLACED.
        ``frames``: the event's frames built so far for the group (see :meth:`frame`)."""
        if self.done:
            return KEPT
        if self.coalesced:
            if seq is not None:
                if seq <= self.last_seq:
                    return KEPT
                self.last_seq = seq
            conn = self.conn
            # (An empty ``latest``, the usual case, replaces nothing.)
            replacing = bool(conn.latest) and self.id in conn.latest
            conn.push_latest(self.id, self.frame(payload_json, frames))
            return REPLACED if replacing else HANDED
        if not self.sequenced or seq is None:
            return HANDED if self._push(payload_json, frames) else KEPT
        if self.replaying:
            if len(self.buffer) >= self.conn.settings.ws_queue_length:
                # Bounded: drop the oldest. It is in the database, and the newer event kept
                # here makes the catch-up fill the gap from there. (Ending the subscription
                # instead would punish a client for waiting its turn to replay.)
                self.buffer.sort()
                del self.buffer[0]
            self.buffer.append((seq, payload_json))
            return KEPT
        if seq <= self.last_seq:
            return KEPT
        if seq > self.last_seq + 1:
            self.buffer.append((seq, payload_json))
            self.start_catch_up(None)
            return KEPT
        if self._push(payload_json, frames):
            self.last_seq = seq
            return HANDED
        return KEPT

    def _push(self, payload_json: str, frames: dict[str, str] | None = None) -> bool:
        if self.conn.push(self.frame(payload_json, frames)):
            return True
        self.overflow()
        return False

    def overflow(self) -> None:
        """The client fell behind: end this subscription with an error, keep the socket."""
        if not self.done:
            self.overflowed = True
            self.group.meters.overflows.inc()
        self.conn.send(
            error(
                self.id,
                [
                    coded_error(
                        "Subscription ended: the client fell behind. Resubscribe "
                        f"with afterSequence: {self.last_seq} to resume.",
                        "SUBSCRIPTION_OVERFLOW",
                        lastSequence=self.last_seq,
                    )
                ],
            )
        )
        self.group.hub.remove(self)

    def start_catch_up(self, replay_from: int | None) -> None:
        """Replay from ``replay_from`` (None: only fill gaps), then deliver the buffer."""
        self.replaying = True
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._catch_up(replay_from))

    async def _catch_up(self, replay_from: int | None) -> None:
        """Deliver from the database what the live stream missed, then the buffered events."""
        try:
            if replay_from is not None:
                await self._replay(replay_from)
            while self.buffer and not self.done:
                self.buffer.sort()
                seq, payload = self.buffer.pop(0)
                if seq <= self.last_seq:
                    continue
                if seq > self.last_seq + 1:
                    await self._fill(self.last_seq, seq)
                    self.last_seq = max(self.last_seq, seq - 1)
                if not self._push(payload):
                    return
                self.group.meters.deliveries.inc()
                self.last_seq = seq
            self.replaying = False
        except ReplayLimitReached:
            self.conn.send(
                error(
                    self.id,
                    [
                        coded_error(
                            "Too many comments to replay: resubscribe with a later "
                            f"afterSequence (last delivered: {self.last_seq}).",
                            "REPLAY_LIMIT",
                            lastSequence=self.last_seq,
                        )
                    ],
                )
            )
            self.group.hub.remove(self)
        except Exception:
            logger.exception("catching up subscription %s failed", self.id)
            self.conn.send(internal_error(self.id))
            self.group.hub.remove(self)

    async def _replay(self, after: int) -> None:
        """``afterSequence`` (or a resync's) replay from ``after``, counted by its outcome."""
        outcome = "ended"  # the subscription or the connection ended first (or cancelled it)
        try:
            if await self._fill(after, None):
                outcome = "ok"
            elif self.overflowed:
                outcome = "SUBSCRIPTION_OVERFLOW"
        except ReplayLimitReached:
            outcome = "REPLAY_LIMIT"
            raise
        except Exception:
            outcome = "INTERNAL_SERVER_ERROR"
            raise
        finally:
            metrics.REPLAYS.labels(outcome).inc()

    async def _fill(self, after: int, before: int | None) -> bool:
        """Deliver the source's replay of the sequences in (``after``, ``before``), in order (for
        comments: from the database, deleted ones skipped).

        A page at a time: the connection's replay slot is held throughout (so one socket runs at
        most ``ws_replays_per_connection`` replays, however many it asks for), the process's only
        while a page is read and rendered (so a client that stops reading stalls its own
        replays, not everyone's), and each frame waits for room in the connection's queue.

        True once the source had nothing more to replay; False when the subscription ended first.
        """
        conn = self.conn
        settings = conn.settings
        group = self.group
        hub = group.hub
        limit = settings.ws_replay_limit
        sent = 0
        async with conn.replay_slots:
            while not self.done and conn.closing is None:
                wanted = min(settings.ws_replay_page_size, limit - sent)
                async with hub.replay_slots:
                    page = await group.source.replay(group.target, after, before, wanted)
                    payloads = await group.render_page([root for _, root in page])
                for (seq, _), payload in zip(page, payloads, strict=True):
                    await conn.room_for_replay()
                    if self.done or conn.closing is not None:
                        return False
                    if not self._push(payload):
                        return False
                    # Paced by the writer above: a counter per frame costs nothing next to it.
                    group.meters.deliveries.inc()
                    metrics.REPLAYED_EVENTS.inc()
                    self.last_seq = after = seq
                    sent += 1
                if sent >= limit:
                    raise ReplayLimitReached
                if len(page) < wanted:
                    return True
                # Let every other task run between pages, even when nothing above had to wait.
                await asyncio.sleep(0)
        return False
