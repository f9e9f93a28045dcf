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

import metrics
from realtime.ports import Viewer
from realtime.protocol.messages import dumps
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
        event_executor = self.executor.build_per_event_executor(root)
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
        return dumps(payload)

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
