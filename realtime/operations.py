"""The GraphQL side of a socket: a ``subscribe`` message's document checked (cached by its text),
then run once (a query or mutation) or started as a subscription in its group.

The checks and the error rule are the GraphQL layer's (``hub.graphql``), the same as HTTP's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    parse,
    value_from_ast_untyped,
)
from graphql.error import GraphQLSyntaxError

from db.instrument import Statements
from realtime.fanout import Connection, Group, Hub, Sub
from realtime.fanout.hub import LazyLoaders
from realtime.ports import Caller
from realtime.protocol.messages import ExecutionPayload, Operation, complete, error
from realtime.sharing import reads_viewer
from realtime.sources import Stream, SubscriptionSource


@dataclass(frozen=True, slots=True)
class Checked:
    """A document with what its text alone decides: its errors, and (when valid) whether it
    selects a viewer-dependent field."""

    document: DocumentNode
    errors: list[GraphQLError]
    reads_viewer: bool
    # The document-only limits' verdict per operation name, filled on first use (as HTTP's
    # document cache keeps it): a thousand subscribers of one document check it once.
    limits: dict[str | None, GraphQLError | None] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Observed:
    """One ``subscribe`` message's operation, for its log line and metrics: what it is, filled
    in as it is learnt, from the message to its end (the endpoint writes the line)."""

    id: str
    started: float
    statements: Statements | None = None
    name: str | None = None
    type: str | None = None
    error: str | None = None
    # Inside ``Operations.subscribe`` (its end is decided when that returns).
    running: bool = True
    # Counted in the metrics already (a subscription is, as it starts).
    counted: bool = False


class Operations:
    """Runs the operations of ``subscribe`` messages against the hub's schema."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.graphql = hub.graphql
        self.settings = hub.settings
        self._documents: dict[str, Checked] = {}

    def _checked(self, query: str) -> Checked | GraphQLSyntaxError:
        """Parse and validate, cached by query text: thousands of clients send the same one."""
        cached = self._documents.get(query)
        if cached is None:
            try:
                document = parse(query, max_tokens=self.settings.max_query_tokens)
            except GraphQLSyntaxError as exc:
                return exc
            # The checks every transport runs on a document alone: cacheable by its text.
            errors = self.graphql.document_errors(document)
            viewer = not errors and reads_viewer(self.graphql.schema, document)
            cached = Checked(document, errors, viewer)
            if len(self._documents) >= self.settings.validation_cache_size:
                self._documents.pop(next(iter(self._documents)))
            self._documents[query] = cached
        return cached

    def _error(self, conn: Connection, sub_id: str, errors: list[GraphQLError]) -> None:
        conn.send(error(sub_id, self.hub.formatted(errors)))

    async def subscribe(
        self,
        conn: Connection,
        sub_id: str,
        payload: dict[str, Any],
        observed: Observed | None = None,
    ) -> None:
        """Check and run the operation of a ``subscribe`` message; errors go to ``sub_id``;
        what it is goes to ``observed`` as it is learnt."""
        operation = Operation.parse(payload)
        if observed is not None:
            observed.name = operation.operation_name
        if len(conn.subs) >= self.settings.ws_max_subscriptions:
            self._error(
                conn,
                sub_id,
                [
                    GraphQLError(
                        f"At most {self.settings.ws_max_subscriptions} subscriptions "
                        "per connection.",
                        extensions={"code": "TOO_MANY_SUBSCRIPTIONS"},
                    )
                ],
            )
            return
        try:
            query = await self.hub.resolve_query(operation.query, operation.extensions)
        except GraphQLError as refused:
            self._error(conn, sub_id, [refused])
            return
        parsed = self._checked(query)
        if isinstance(parsed, GraphQLSyntaxError):
            self._error(conn, sub_id, [parsed])
            return
        document, errors = parsed.document, parsed.errors
        if not errors:
            # The checks every transport runs on this request's variables and operation name.
            request_error = self.graphql.request_error(
                document, operation.operation_name, operation.variables, parsed.limits
            )
            errors = [request_error] if request_error else []
        if errors:
            self._error(conn, sub_id, list(errors))
            return
        chosen = self.graphql.choose_operation(document, operation.operation_name)
        if isinstance(chosen, GraphQLError):
            self._error(conn, sub_id, [chosen])
            return
        if observed is not None:
            observed.name = chosen.name.value if chosen.name else operation.operation_name
            observed.type = chosen.operation.value
        if chosen.operation != OperationType.SUBSCRIPTION:
            payload_out = await self._execute_once(conn, sub_id, operation, query)
            if observed is not None:
                observed.error = error_code(payload_out.get("errors"))
                if observed.error is None and chosen.operation == OperationType.MUTATION:
                    observed.error = refusal_code(document, chosen, payload_out.get("data"))
            return
        await self._start_subscription(conn, sub_id, operation, query, parsed, chosen)

    async def _execute_once(
        self, conn: Connection, sub_id: str, operation: Operation, query: str
    ) -> ExecutionPayload:
        caller = Caller(conn.viewer, conn.token, conn.client_address, conn.ws)
        payload = await self.graphql.run_operation(
            query, operation.variables, operation.operation_name, caller
        )
        conn.send({"id": sub_id, "type": conn.wire.data_type, "payload": payload})
        conn.send(complete(sub_id))
        return payload

    async def _start_subscription(
        self,
        conn: Connection,
        sub_id: str,
        operation: Operation,
        query: str,
        checked: Checked,
        chosen: OperationDefinitionNode,
    ) -> None:
        document = checked.document
        # The context is each execution's own (Group._execute): none is needed to build.
        built = self.graphql.executor_class.build(
            self.graphql.schema,
            document,
            raw_variable_values=operation.variables,
            operation_name=operation.operation_name,
        )
        if isinstance(built, list):
            self._error(conn, sub_id, built)
            return
        root_field = _root_field(document, chosen)
        if root_field is None:
            self._error(
                conn,
                sub_id,
                [
                    GraphQLError(
                        "A subscription selects exactly one root field.",
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                ],
            )
            return
        field_name = root_field.name.value
        source = self.hub.sources[field_name]
        try:
            stream = await source.open(_arguments(root_field, dict(built.variable_values.coerced)))
        except GraphQLError as refused:
            self._error(conn, sub_id, [refused])
            return
        # A selection that depends on the viewer is executed per viewer (anonymous ones share
        # theirs); any other is shared by everyone, with no viewer reachable.
        per_viewer = checked.reads_viewer
        viewer_key = conn.viewer.id if conn.viewer and per_viewer else None
        key: tuple[Any, ...]
        if self.hub.share:
            key = (
                field_name,
                stream.target,
                query,
                json.dumps(operation.variables, sort_keys=True),
                operation.operation_name,
                viewer_key,
            )
        else:  # the unshared path, for the benchmark's baseline
            key = (field_name, stream.target, id(conn), sub_id)
        sub = self.hub.add(
            conn,
            sub_id,
            key,
            lambda: Group(
                self.hub,
                key,
                field_name,
                stream.target,
                stream.channel,
                built,
                conn.viewer if per_viewer else None,
                source,
                per_viewer,
            ),
        )
        await _start(sub, source, stream)


async def _start(sub: Sub, source: SubscriptionSource[Any], stream: Stream[Any]) -> None:
    """Deliver what comes before live events: the first message, or the replay from the
    resume cursor (or from the source's head, filling only what arrives meanwhile)."""
    if not source.sequenced:
        if source.delivery == "coalesced":
            # Nothing delivered yet: the first message may carry sequence 0 (a market never
            # traded), which must not read as already sent.
            sub.last_seq = -1
        # One set of loaders for the first message's root and its execution, let go once it
        # is rendered: left to the cyclic collector, a set per subscriber could outlive the
        # bulk subscribe's gc.freeze (realtime.fanout.gctuning) and stay for good.
        loaders = LazyLoaders(sub.group.hub.graphql.loaders)
        try:
            snapshot = await source.snapshot(stream.target, loaders)
            if snapshot is not None:
                seq, root = snapshot
                # As a live event: one that arrived meanwhile is newer than this snapshot.
                if sub.offer(seq, await sub.group.render(root, loaders)):
                    sub.group.meters.deliveries.inc()
        finally:
            loaders.release()
        sub.replaying = False
        return
    if stream.after is not None:
        sub.last_seq = stream.after
        sub.start_catch_up(stream.after)
        return
    sub.last_seq = await source.head(stream.target)
    sub.start_catch_up(None)


def _root_field(document: DocumentNode, operation: OperationDefinitionNode) -> FieldNode | None:
    """The subscription's one root field, looking through fragments and inline fragments."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    selections = list(operation.selection_set.selections)
    for _ in range(100):
        if not selections:
            return None
        node = selections.pop(0)
        if isinstance(node, FieldNode):
            return node
        if isinstance(node, InlineFragmentNode):
            selections = list(node.selection_set.selections) + selections
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            selections = list(fragments[node.name.value].selection_set.selections) + selections
    return None


def _arguments(node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    values = {
        argument.name.value: value_from_ast_untyped(argument.value, variables)
        for argument in node.arguments or ()
    }
    return {name: value for name, value in values.items() if value is not Undefined}


# -- what an operation's log line and metrics say (the HTTP view uses these too) ------------------


def error_code(errors: Any) -> str | None:
    """The first ``extensions.code`` of a response's formatted ``errors``."""
    if not isinstance(errors, list):
        return None
    for item in errors:
        extensions = item.get("extensions") if isinstance(item, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if isinstance(code, str):
            return code
    return None


def refusal_code(
    document: DocumentNode, operation: OperationDefinitionNode, data: Any
) -> str | None:
    """The code of a mutation's first ``UserError`` in ``data``, read where the selection puts
    it (aliases and fragments followed); None when there is none, or ``code`` isn't selected."""
    if not isinstance(data, dict):
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for root in _fields(operation.selection_set.selections, fragments):
        payload = data.get(_key(root))
        if not isinstance(payload, dict) or root.selection_set is None:
            continue
        for errors in _fields(root.selection_set.selections, fragments):
            if errors.name.value != "errors" or errors.selection_set is None:
                continue
            items = payload.get(_key(errors))
            if not isinstance(items, list) or not items or not isinstance(items[0], dict):
                continue
            for code in _fields(errors.selection_set.selections, fragments):
                value = items[0].get(_key(code))
                if code.name.value == "code" and isinstance(value, str):
                    return value
    return None


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _fields(
    selections: Any, fragments: dict[str, FragmentDefinitionNode], depth: int = 0
) -> list[FieldNode]:
    """The fields of a selection set, looking through (bounded) fragments."""
    found: list[FieldNode] = []
    for node in selections:
        if isinstance(node, FieldNode):
            found.append(node)
        elif depth < 10 and isinstance(node, InlineFragmentNode):
            found += _fields(node.selection_set.selections, fragments, depth + 1)
        elif depth < 10 and isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            spread = fragments[node.name.value].selection_set.selections
            found += _fields(spread, fragments, depth + 1)
    return found
