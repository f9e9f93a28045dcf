"""A group: subscriptions that render identically, executed once per event for all of them.

Why groups: strawberry's handler executes every event once per subscriber. Here identical
subscriptions (same document, variables and, where the selection depends on the viewer, the
same viewer) form a group: an event is loaded once, executed once per group, encoded once, and
the same bytes go on each subscriber's connection. Whether a selection depends on the viewer is
the schema's to say (``realtime.sharing``); a shared group's executions can't read the viewer.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from graphql import ExecutionResult
from graphql.execution import Executor

try:  # graphql-core's own (what build_per_event_executor gives each event's copy)
    from graphql.execution.executor import CollectedErrors
except ImportError:  # pragma: no cover - another graphql-core: its own copy, as before
    CollectedErrors = None  # type: ignore[assignment,misc]

import metrics
from realtime.ports import Viewer
from realtime.protocol.messages import dumps_payload
from realtime.sharing import report_viewer_reads
from realtime.sources import Delivery, SubscriptionSource

if TYPE_CHECKING:
    from realtime.fanout.hub import Hub
    from realtime.fanout.subscription import Sub

# Replay comments rendered between two yields to the event loop (see Group.render_page).
RENDER_SLICE = 25


@dataclass(frozen=True, slots=True)
class FieldMeters:
    """The fan-out metrics of one subscription field, their label children built once (the
    field names are the schema's: a bounded set)."""

    subscriptions: Any
    groups: Any
    deliveries: Any
    coalesced: Any
    overflows: Any

    @staticmethod
    @cache
    def of(field_name: str) -> FieldMeters:
        """The meters of ``field_name``."""
        return FieldMeters(
            metrics.SUBSCRIPTIONS_ACTIVE.labels(field_name),
            metrics.SUBSCRIPTION_GROUPS.labels(field_name),
            metrics.DELIVERIES.labels(field_name),
            metrics.COALESCED.labels(field_name),
            metrics.OVERFLOWS.labels(field_name),
        )


# Executor classes by whether _per_event_executor may copy them directly (a class or two).
_PLAINLY_COPIED: dict[type, bool] = {}


def _plainly_copied(kind: type) -> bool:
    """Whether ``copy.copy`` of a ``kind`` is a new instance with the same ``__dict__`` (no
    slots of its own, no copy or pickling hooks) and its ``build_per_event_executor`` is
    graphql-core's: then :func:`_per_event_executor` may do what they do, directly."""
    plain = _PLAINLY_COPIED.get(kind)
    if plain is None:
        plain = _PLAINLY_COPIED[kind] = (
            CollectedErrors is not None
            and getattr(kind, "build_per_event_executor", None) is Executor.build_per_event_executor
            and not hasattr(kind, "__copy__")
            and kind.__reduce_ex__ is object.__reduce_ex__
            and kind.__reduce__ is object.__reduce__
            and getattr(kind, "__getstate__", None) is getattr(object, "__getstate__", None)
            and all(not getattr(base, "__slots__", ()) for base in kind.__mro__)
            and kind.__new__ is object.__new__
        )
    return plain


def _per_event_executor(executor: Executor, root: Any) -> Executor:
    """``executor.build_per_event_executor(root)``: graphql-core's is ``copy(executor)`` with
    its own root value and errors, and copy's generic protocol (``__reduce_ex__``, copyreg) was
    most of its 2.5 µs, once per group and event. The same copy, made directly."""
    kind = type(executor)
    if not _plainly_copied(kind):
        return executor.build_per_event_executor(root)
    event_executor = object.__new__(kind)
    event_executor.__dict__.update(executor.__dict__)
    event_executor.root_value = root
    event_executor.collected_errors = CollectedErrors()
    return event_executor


@dataclass(eq=False)
class Group:
    """Subscriptions that render identically: one execution per event for all of them."""

    hub: Hub
    key: tuple[Any, ...]
    field_name: str
    target: Any
    channel: str
    executor: Executor
    viewer: Viewer | None
    # What the field does: its delivery, root values, replay.
    source: SubscriptionSource[Any]
    # The document selects a viewer-dependent field: executed with ``viewer`` (the group is
    # that viewer's). Otherwise shared: executed with no viewer reachable at all.
    reads_viewer: bool = False
    subs: set[Sub] = field(default_factory=set)
    meters: FieldMeters = field(init=False)

    def __post_init__(self) -> None:
        self.meters = FieldMeters.of(self.field_name)

    @property
    def delivery(self) -> Delivery:
        """How its subscribers get events: in order, or coalesced to the latest."""
        return self.source.delivery

    @property
    def sequenced(self) -> bool:
        """Whether its events carry sequences its source can replay from."""
        return self.source.sequenced

    def _execute(self, root: Any, loaders: Any) -> Any:
        """Start executing the document with ``root``: a result, or an awaitable of one."""
        event_executor = _per_event_executor(self.executor, root)
        # graphql-core's per-event copy shares the group's memo of collected subfields, keyed by
        # the identity of field lists each execution builds anew: shared, it kept an entry or
        # two (and their field lists) per event for the life of the group — 27,500 objects
        # after a 13,750-comment replay, and full collections of 100-300 ms. One per event.
        event_executor._relevant_sub_fields = {}
        event_executor.context_value = self.hub.graphql.context(
            loaders, self.viewer, shared=not self.reads_viewer
        )
        return event_executor.execute_operation(False)

    def _encode(self, result: ExecutionResult) -> str:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors = list(result.errors)
            if not self.reads_viewer:
                report_viewer_reads(self.field_name, errors)
            payload["errors"] = self.hub.formatted(errors)
        return dumps_payload(payload)

    async def render(self, root: Any, loaders: Any) -> str:
        """Execute the document once with ``root`` and encode the payload once."""
        outcome = self._execute(root, loaders)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return self._encode(cast(ExecutionResult, outcome))

    async def render_page(self, roots: list[Any]) -> list[str]:
        """Render a replay page with one set of loaders, so a relation the selection reaches is
        one batched query per slice (and mostly cache hits after the first slice).

        In slices, with a yield between them: a whole page of 200 held the loop for 30-150 ms
        on a busy 2-core machine (~0.3 ms of graphql-core per comment).
        """
        loaders = self.hub.graphql.loaders()
        payloads: list[str] = []
        for start in range(0, len(roots), RENDER_SLICE):
            if start:
                await asyncio.sleep(0)
            outcomes = [
                self._execute(root, loaders) for root in roots[start : start + RENDER_SLICE]
            ]
            pending = [(i, o) for i, o in enumerate(outcomes) if inspect.isawaitable(o)]
            if pending:
                done = await asyncio.gather(*(outcome for _, outcome in pending))
                for (i, _), result in zip(pending, done, strict=True):
                    outcomes[i] = result
            payloads.extend(self._encode(cast(ExecutionResult, o)) for o in outcomes)
        return payloads
