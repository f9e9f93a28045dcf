"""What a subscription field does, declared beside the field: the ``SubscriptionSource``.

A subscription field carries its source in its strawberry metadata (``metadata={SOURCE: ...}``)
and the hub finds it by reading the schema it is handed (``sources_of``): the channel the
arguments select, what a broker event becomes as the root value, how the events are delivered
(in order, or coalesced to the latest), and optionally the first message (``snapshot``) and
the replay of what a resuming client missed (``sequenced`` sources: ``replay`` and ``head``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

from graphql import GraphQLSchema

# The metadata key of a subscription field's source.
SOURCE = "source"

# "ordered": every event, in order; a client that falls behind loses the subscription (and
# resumes with its last sequence). "coalesced": only the latest matters; unsent ones are
# replaced, and an event older than the last one delivered is dropped.
Delivery = Literal["ordered", "coalesced"]
# What a source's subscriptions are to (an article's id, say): hashable, it keys groups.
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stream(Generic[T]):
    """What a subscription's arguments select."""

    # The broker channel its events arrive on.
    channel: str
    # The object subscribed to (an article's id, say): handed back to ``root``, ``replay``...
    target: T
    # A sequenced source's resume cursor: replay what follows it before going live.
    after: int | None = None


class SubscriptionSource(Generic[T]):
    """How one subscription field turns broker events into results.

    Subclasses implement ``open`` and ``root``; a ``sequenced`` one also ``replay`` and
    ``head``; one whose first message is the current state, ``snapshot``. ``loaders`` are the
    GraphQL layer's, made fresh by the hub (one set per event, shared by all its groups).
    """

    delivery: ClassVar[Delivery] = "ordered"
    # Events carry a per-target sequence (1, 2, 3…) that ``replay`` can fill from: a gap is
    # filled from there, a duplicate dropped, and ``Stream.after`` replays first. Ordered only.
    sequenced: ClassVar[bool] = False

    async def open(self, arguments: Mapping[str, Any]) -> Stream[T]:
        """The stream ``arguments`` (the root field's, by GraphQL name) select.

        Raise a ``graphql.GraphQLError`` with ``extensions.code`` to refuse the subscription:
        the client gets it as the subscription's error.
        """
        raise NotImplementedError

    async def root(self, target: T, event: Mapping[str, Any], loaders: Any) -> Any:
        """The root value ``event`` becomes, or None when it is not for this field."""
        raise NotImplementedError

    def sequence(self, event: Mapping[str, Any]) -> int | None:
        """The event's sequence (its ``seq``), or None."""
        seq = event.get("seq")
        return seq if isinstance(seq, int) else None

    async def snapshot(self, target: T, loaders: Any) -> tuple[int, Any] | None:
        """The first message, sent at once: (its sequence, its root value); None for none."""
        return None

    async def replay(
        self, target: T, after: int, before: int | None, limit: int
    ) -> Sequence[tuple[int, Any]]:
        """Up to ``limit`` (sequence, root value) pairs of sequences in (``after``, ``before``),
        in order (a sequenced source's page of replay)."""
        raise NotImplementedError

    async def head(self, target: T) -> int:
        """The last sequence already committed: live delivery goes on after it."""
        raise NotImplementedError


def sources_of(schema: GraphQLSchema) -> dict[str, SubscriptionSource[Any]]:
    """Every subscription field's source, by field name, read from the fields' metadata.

    A field without one is a mistake of the schema, refused at start-up rather than at the
    first subscribe.
    """
    root = schema.subscription_type
    found: dict[str, SubscriptionSource[Any]] = {}
    for name, field in (root.fields if root is not None else {}).items():
        definition = (field.extensions or {}).get("strawberry-definition")
        source = (getattr(definition, "metadata", None) or {}).get(SOURCE)
        if not isinstance(source, SubscriptionSource):
            raise TypeError(
                f"Subscription.{name} declares no SubscriptionSource "
                f"(metadata={{{SOURCE!r}: ...}} on the field)"
            )
        if source.sequenced and source.delivery != "ordered":
            raise TypeError(f"Subscription.{name}: a sequenced source delivers in order")
        found[name] = source
    return found
