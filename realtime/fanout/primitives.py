"""asyncio's Event and Queue, their waiter lists in plain lists instead of deques.

Every idle websocket holds several of these (its protocol's receive queue, which is four of
them; its writable flag; its connection's ``closed``). A ``collections.deque`` allocates a
64-slot block when made, ~760 bytes with its header, used or not: ~5 KiB per socket for lists
that hold at most one or two futures. A list of the same few items is ~70 bytes. The classes
behave as asyncio's (the same methods, run unchanged): only the containers differ.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

T = TypeVar("T")


class Waiters(list[T]):
    """A list with ``deque.popleft``: what asyncio's Event and Queue call on their waiters
    (append, remove, popleft, iteration, len) and on a queue's items."""

    __slots__ = ()

    def popleft(self) -> T:
        """The first item, removed (IndexError when empty, like a deque's)."""
        return self.pop(0)


class LightEvent(asyncio.Event):
    """``asyncio.Event`` whose waiters are a :class:`Waiters` list."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters: Waiters[asyncio.Future[Any]] = Waiters()  # type: ignore[assignment]


class LightQueue(asyncio.Queue[T]):
    """``asyncio.Queue`` whose getters, putters and items are :class:`Waiters` lists (a
    websocket's receive queue holds a message or two at a time) and whose ``join`` flag is a
    :class:`LightEvent`."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._getters: Waiters[asyncio.Future[None]] = Waiters()
        self._putters: Waiters[asyncio.Future[None]] = Waiters()
        finished = LightEvent()
        finished.set()
        self._finished = finished

    def _init(self, maxsize: int) -> None:
        self._queue: Waiters[T] = Waiters()
