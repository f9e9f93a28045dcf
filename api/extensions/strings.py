"""Input hygiene: strings no input may hold (NUL, lone surrogates; see ``unstorable_reason``),
refused as BAD_USER_INPUT wherever they come from, the document's literals or the variables.

Both walks are iterative: a deeply nested value must not exhaust the stack here, before
graphql-core's validation or coercion would see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import DocumentNode, GraphQLError, Node, StringValueNode

from api.core.errors import BadUserInput, graphql_error
from db.sql import unstorable_reason


def string_literal_error(document: DocumentNode) -> GraphQLError | None:
    """A string literal in the document that no string input may hold, as BAD_USER_INPUT."""
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, StringValueNode):
            reason = unstorable_reason(node.value)
            if reason is not None:
                return graphql_error(BadUserInput(reason))
            continue
        for key in node.keys:
            child = getattr(node, key, None)
            if isinstance(child, Node):
                stack.append(child)
            elif isinstance(child, tuple | list):
                stack.extend(c for c in child if isinstance(c, Node))
    return None


def variables_error(variables: Mapping[str, Any] | None) -> GraphQLError | None:
    """A string in the variables (keys included) that no input may hold, as BAD_USER_INPUT.

    Iterative: a deeply nested value must not exhaust the stack here.
    """
    stack: list[Any] = [variables or {}]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            reason = unstorable_reason(value)
            if reason is not None:
                return graphql_error(BadUserInput(reason))
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None
