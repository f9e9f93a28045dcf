"""The size of a response: estimated before anything is encoded, and the one error a response
over the limit becomes (on HTTP and on the websocket alike)."""

from __future__ import annotations

from typing import Any

from api.core.errors import ResponseTooLarge


def response_size_over(value: Any, limit: int) -> bool:
    """Whether ``value`` as JSON would be over ``limit`` characters, estimated from what it holds
    and stopping as soon as it is: before anything is encoded. A string referenced many times
    counts each time (one article body under 84,000 aliases and ids is a small result and a
    245 MB body). The planned executor counts the same as it builds a response
    (``api.core.execution``; the HTTP view then skips this walk)."""
    return estimated_size(value, limit) > limit


def estimated_size(value: Any, limit: float = float("inf")) -> int:
    """``response_size_over``'s estimate of ``value``'s JSON size (stopping once over
    ``limit``)."""
    size = 0
    stack: list[Any] = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = item.__class__
        # Exact classes first (what execution builds), subclasses by isinstance after.
        if kind is str:
            size += len(item) + 2
        elif kind is dict:
            size += 2 + 4 * len(item) + sum(map(len, item))
            extend(item.values())
        elif kind is list:
            size += 2 + len(item)
            extend(item)
        elif isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + sum(len(key) + 4 for key in item)
            extend(item.values())
        elif isinstance(item, list):
            size += 2 + len(item)
            extend(item)
        else:
            size += 8
        if size > limit:
            return size
    return size


def response_too_large(limit: int) -> dict[str, Any]:
    """The one error a response over MAX_RESPONSE_BYTES becomes."""
    return ResponseTooLarge(
        f"The response would exceed {limit} bytes. Ask for less.", limit="responseBytes"
    ).formatted()
