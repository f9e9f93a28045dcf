"""The operations and fragments of a document, and the operation a request runs."""

from __future__ import annotations

from graphql import DocumentNode, FragmentDefinitionNode, GraphQLError, OperationDefinitionNode

from api.core.errors import BadUserInput, graphql_error


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
