"""The garbage collector tuned for thousands of long-lived sockets.

A full collection walks every tracked object: with 5,000 subscribed sockets that was 38.7 % of
the server's CPU while delivering an event, though none of those objects was garbage. So:

* after start-up, everything alive is frozen (``gc.freeze``: kept out of every later
  collection), and the generation 0 threshold set from ``GC_GEN0_THRESHOLD`` (20,000 by
  default: at Python's 700, pages in flight set off a young collection a page);
* before any freeze the young generations are collected (``gc.collect(1)``: at most the
  threshold's objects and their survivors, a few milliseconds): with a high threshold much of
  what is young is garbage, and a frozen cycle is never collected (an app started again and
  again in one process, as the test suite does, grew a worker to 9 GB);
* once ``GC_FREEZE_AFTER_SUBSCRIPTIONS`` subscriptions were made since the last freeze and none
  for ``GC_FREEZE_QUIET_MS``, what is alive is frozen again: the sockets of a bulk subscribe
  (unless fewer than that many are still open: a churn of short connections is not frozen);
* a frozen object is still freed by reference counting, but a reference cycle among frozen
  objects is never collected: once as many subscriptions ended as were open when it froze, the
  frozen set is handed back to the collector (``gc.unfreeze``), so closed sockets can't grow
  the heap; the next bulk subscribe freezes again.

``gc.freeze`` and ``gc.unfreeze`` move lists, whatever their length: neither holds the loop.
"""

from __future__ import annotations

import asyncio
import gc

from settings import Settings


def _freeze() -> None:
    """Freeze what is alive, its young garbage collected first (see the module docstring)."""
    gc.collect(1)
    gc.freeze()


class GCTuning:
    """When to freeze and unfreeze the collector's objects (one per hub)."""

    __slots__ = ("_timer", "ended", "frozen", "last_subscribe", "live", "settings", "since_freeze")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Subscriptions open now; made since the last freeze; open when it froze.
        self.live = 0
        self.since_freeze = 0
        self.frozen = 0
        # Subscriptions ended since the last freeze.
        self.ended = 0
        self.last_subscribe = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def after_start_up(self) -> None:
        """The app is loaded: raise the young generation's threshold, freeze what is alive."""
        if self.settings.gc_gen0_threshold:
            _, gen1, gen2 = gc.get_threshold()
            gc.set_threshold(self.settings.gc_gen0_threshold, gen1, gen2)
        _freeze()

    def subscribed(self) -> None:
        """A subscription was made: freeze once a bulk of them is done."""
        self.live += 1
        wanted = self.settings.gc_freeze_after_subscriptions
        if not wanted:
            return
        self.since_freeze += 1
        loop = asyncio.get_running_loop()
        self.last_subscribe = loop.time()
        if self.since_freeze >= wanted and self._timer is None:
            self._timer = loop.call_later(self.settings.gc_freeze_quiet_ms / 1000, self._quiet)

    def _quiet(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        wait = self.last_subscribe + self.settings.gc_freeze_quiet_ms / 1000 - loop.time()
        if wait > 0:  # still subscribing: look again once it has been quiet long enough
            self._timer = loop.call_later(wait, self._quiet)
            return
        self.freeze()

    def freeze(self) -> None:
        """Freeze what is alive now, if enough subscriptions are open to be worth it."""
        self.since_freeze = 0
        if self.live < self.settings.gc_freeze_after_subscriptions:
            return
        _freeze()
        # The count that decides the unfreeze starts at the first freeze and is never reset by
        # a later one: a steady base of subscribers plus a churn re-freezes again and again,
        # and resetting it there would never hand the closed sockets' cycles back.
        if not self.frozen:
            self.frozen, self.ended = self.live, 0

    def unsubscribed(self) -> None:
        """A subscription ended: once as many ended as were open at the freeze, unfreeze (their
        cycles can be collected again)."""
        self.live = max(0, self.live - 1)
        if not self.frozen:
            return
        self.ended += 1
        if self.ended >= self.frozen:
            gc.unfreeze()
            self.frozen = self.ended = 0

    def cancel(self) -> None:
        """No freeze pending any more (the hub stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
