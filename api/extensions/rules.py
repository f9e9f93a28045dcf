"""The limits of one operation that its document alone decides: expansion, depth, aliases,
expensive fields, introspection, and the node count when no variable can change it."""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode

from api.extensions.cost import MAX_FIELD_VISITS, TooManyVisits, too_complex, walk
from settings import Settings

# __schema / __type selections in one operation: GraphiQL asks once; each answer is the whole
# schema, built synchronously.
MAX_INTROSPECTION_FIELDS = 2


def operation_limit(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    settings: Settings,
) -> GraphQLError | None:
    """The first limit of ``operation`` that the document alone breaks: depth, aliases,
    expensive fields, introspection, and the node count when no variable can change it.
    Cacheable with the document."""
    try:
        walker = walk(schema, document, [operation], None, settings)
    except TooManyVisits:
        return too_complex(f"Query expands to more than {MAX_FIELD_VISITS} fields.", "fields")
    if walker.max_depth > settings.max_query_depth:
        return too_complex(
            f"Query depth {walker.max_depth} exceeds the limit of {settings.max_query_depth}.",
            "depth",
        )
    if walker.aliases > settings.max_query_aliases:
        return too_complex(
            f"Query uses {walker.aliases} aliases; the limit is {settings.max_query_aliases}.",
            "aliases",
        )
    if walker.expensive > settings.max_expensive_fields:
        return too_complex(
            f"Query asks for {walker.expensive} expensive fields (password checks, trades, "
            f"settlements); the limit is {settings.max_expensive_fields}.",
            "expensive",
        )
    if walker.introspection > MAX_INTROSPECTION_FIELDS:
        return too_complex(
            f"Query asks for __schema or __type {walker.introspection} times; the limit is "
            f"{MAX_INTROSPECTION_FIELDS}.",
            "introspection",
        )
    if not operation.variable_definitions:
        return too_many_nodes(walker.nodes, settings)
    return None


def too_many_nodes(nodes: int, settings: Settings) -> GraphQLError | None:
    """The node limit, on a count from the document alone or at a request's sizes."""
    if nodes > settings.max_query_nodes:
        return too_complex(
            f"Query could return {nodes} nodes; the limit is "
            f"{settings.max_query_nodes}. Ask for smaller pages or fewer ids.",
            "nodes",
        )
    return None
