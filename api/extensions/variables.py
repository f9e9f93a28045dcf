"""The checks of one request, after ``document_errors`` found nothing in its document: the
strings in its variables, the choice of operation, the operation's document-only limits
(``rules``, cached with the document when the transport can), and the node count at the sizes
the variables ask for, after coercion: the one limit a document alone can't decide.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
)
from graphql.execution.values import get_variable_values

from api.extensions.cost import walk
from api.extensions.documents import without_suggestions
from api.extensions.operations import choose_operation
from api.extensions.rules import operation_limit, too_many_nodes
from api.extensions.strings import variables_error
from settings import Settings


def request_error(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    settings: Settings,
    limits: dict[str | None, GraphQLError | None] | None = None,
    context: Any = None,
) -> GraphQLError | None:
    """The first check of this request to fail, after ``document_errors`` found nothing: the
    strings in the variables, the choice of operation, its document-only limits (from
    ``limits``, a per-document cache of ``operation_limit`` by operation name, when given), and
    the node count at the sizes the variables ask for, after coercion. The chosen operation's
    type is noted on ``context`` (the request's Context) when given."""
    error = variables_error(variables)
    if error is not None:
        return error
    operation = choose_operation(document, operation_name)
    if isinstance(operation, GraphQLError):
        return operation
    if context is not None:
        context.operation_type = operation.operation.value
    key = operation.name.value if operation.name else None
    if limits is not None and key in limits:
        error = limits[key]
    else:
        error = operation_limit(schema, document, operation, settings)
        if limits is not None:
            limits[key] = error
    if error is not None or not operation.variable_definitions:
        return error
    # Count at the values execution will see (a single value for a list variable becomes a list
    # of one, 100.0 becomes 100). A value that doesn't coerce (missing, null for non-null,
    # wrong type) is the request's error, BAD_USER_INPUT, before execution, whatever the kind.
    values = get_variable_values(
        schema, operation.variable_definitions, variables or {}, max_errors=1
    )
    if isinstance(values, list):
        first = values[0]
        coded = GraphQLError(
            first.message, nodes=first.nodes, extensions={"code": "BAD_USER_INPUT"}
        )
        return without_suggestions(coded, settings)
    return too_many_nodes(_nodes(schema, document, operation, values.coerced, settings), settings)


# Node counts at a request's sizes, per operation: id(operation) -> (a weak reference to it, the
# schema, the variables the walk read, their values as JSON -> count). Weak: an entry lives as
# long as its document does elsewhere (the document cache), and pins nothing itself (a refused
# 30 KB document kept here would be ~2 MB of tokens). Bounded in value sets per operation too.
MAX_COUNTED_OPERATIONS = 512
MAX_COUNTS_PER_OPERATION = 64
# Longer value sets (a list of a thousand ids) are walked every time rather than kept.
MAX_COUNT_KEY_CHARS = 512
_Counts = tuple[
    "weakref.ref[OperationDefinitionNode]", GraphQLSchema, tuple[str, ...], dict[str, int]
]
_counts: dict[int, _Counts] = {}


def _forget(key: int) -> Callable[[Any], None]:
    def forget(reference: Any) -> None:
        entry = _counts.get(key)
        if entry is not None and entry[0] is reference:
            del _counts[key]

    return forget


def _nodes(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    coerced: dict[str, Any],
    settings: Settings,
) -> int:
    """The operation's node count at ``coerced``'s sizes: walked once per operation and set of
    values of the variables the walk reads (an article page's ``$slug`` reads none: one walk).
    A variable read only inside arguments is keyed by the shape of its lists alone (all an
    argument's count reads), so ``buyShares(input: $input)`` walks once whatever the amount."""
    entry = _counts.get(id(operation))
    if entry is not None and (entry[0]() is not operation or entry[1] is not schema):
        entry = None
    if entry is not None:
        key = _values_key(entry[2], coerced)
        if key is not None and key in entry[3]:
            return entry[3][key]
    walker = walk(schema, document, [operation], coerced, settings)
    whole = tuple(sorted(walker.read))
    shaped = _structured(schema, operation, walker.read_in_arguments) - walker.read
    read = (*whole, *(SHAPE + name for name in sorted(shaped)))
    key = _values_key(read, coerced)
    if key is None:
        return walker.nodes
    if entry is None or entry[2] != read:
        if len(_counts) >= MAX_COUNTED_OPERATIONS:
            _counts.pop(next(iter(_counts)))
        entry = (weakref.ref(operation, _forget(id(operation))), schema, read, {})
        _counts[id(operation)] = entry
    if len(entry[3]) >= MAX_COUNTS_PER_OPERATION:
        entry[3].pop(next(iter(entry[3])))
    entry[3][key] = walker.nodes
    return walker.nodes


# Marks a name of _values_key whose lists' shape is its key, not its value.
SHAPE = "\x00"


def _shape(value: Any) -> Any:
    """What of ``value`` an argument's count reads: its lists' lengths, however nested (every
    scalar is None), as ``Walker._argument_items`` counts them."""
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, dict):
        return {name: _shape(item) for name, item in value.items()}
    return None


def _structured(
    schema: GraphQLSchema, operation: OperationDefinitionNode, names: set[str]
) -> set[str]:
    """Those of ``names`` whose type can hold a list (a list, an input object, a custom
    scalar): an argument's count reads only its lists, so a String or an Int can't change it."""
    plain = {"String", "ID", "Int", "Float", "Boolean"}
    structured: set[str] = set()
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in names:
            continue
        type_node: Any = definition.type
        if isinstance(type_node, NonNullTypeNode):
            type_node = type_node.type
        if isinstance(type_node, NamedTypeNode):
            named = schema.get_type(type_node.name.value)
            if (named is not None and named.name in plain) or isinstance(named, GraphQLEnumType):
                continue
        structured.add(name)
    return structured


def _values_key(names: tuple[str, ...], coerced: dict[str, Any]) -> str | None:
    """The values of ``names`` in ``coerced`` (the shape, for a name marked ``SHAPE``) as one
    JSON text, or None (not JSON, or over MAX_COUNT_KEY_CHARS: uncached)."""
    values = [
        _shape(coerced.get(name[1:])) if name.startswith(SHAPE) else coerced.get(name)
        for name in names
    ]
    try:
        key = json.dumps(values, sort_keys=True, default=None)
    except (TypeError, ValueError):
        return None
    return key if len(key) <= MAX_COUNT_KEY_CHARS else None
