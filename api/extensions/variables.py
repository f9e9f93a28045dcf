"""The checks of one request, after ``document_errors`` found nothing in its document: the
strings in its variables, the choice of operation, the operation's document-only limits
(``rules``, cached with the document when the transport can), and the node count at the sizes
the variables ask for, after coercion: the one limit a document alone can't decide.
"""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema
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
    walker = walk(schema, document, [operation], values.coerced, settings)
    return too_many_nodes(walker.nodes, settings)
