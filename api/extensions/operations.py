"""The operations and fragments of a document, and the operation a request runs."""

from __future__ import annotations

import re

from graphql import DocumentNode, FragmentDefinitionNode, GraphQLError, OperationDefinitionNode

from api.core.errors import BadUserInput, graphql_error

# A GraphQL Name, as the spec defines it (ASCII only).
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,254}")


def definitions(
    document: DocumentNode,
) -> tuple[list[OperationDefinitionNode], dict[str, FragmentDefinitionNode]]:
    """The operations of ``document`` in order, and its fragments by name."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return operations, fragments


def choose_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | GraphQLError:
    """The operation a request runs, or why there is none (BAD_USER_INPUT), as the spec says."""
    operations, _ = definitions(document)
    if operation_name is not None and not _NAME.fullmatch(operation_name):
        # Never echoed: it could hold anything (a lone surrogate breaks every encoder after).
        return graphql_error(
            BadUserInput("operationName must be a GraphQL name ([_A-Za-z][_0-9A-Za-z]*).")
        )
    if operation_name is None:
        if len(operations) == 1:
            return operations[0]
        if not operations:
            return graphql_error(BadUserInput("The document holds no operation."))
        return graphql_error(
            BadUserInput("Must provide operation name if query contains multiple operations.")
        )
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    return graphql_error(BadUserInput(f"Unknown operation named '{operation_name}'."))
