"""Schema extensions: query limits before execution, and one error rule for each kind.

Both hooks are synchronous: an async hook would make every field async (DESIGN.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.errors import ApiError, BadUserInput, QueryTooComplex, graphql_error
from settings import Settings

logger = logging.getLogger("agora.errors")

MASKED_MESSAGE = "Internal server error."
# graphql-core's wording for a value that doesn't fit its type (a literal or a variable): those
# are malformed arguments (BAD_USER_INPUT), not malformed documents.
_INPUT_ERROR_MARKERS = (
    "got invalid value",
    "cannot represent",
    "Expected value of type",
    "Expected type",
    "of required type",
    "was not provided",
)


# -- query limits ---------------------------------------------------------------------------


# Fragments spread twice per level expand exponentially: past this many field visits the
# document is too complex whatever its other numbers are.
MAX_FIELD_VISITS = 20_000


class _TooManyVisits(Exception):
    """The walk gave up."""


class _Walker:
    """Depth, aliases and GitHub-style node count of one operation, fragments expanded."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        default_page: int,
        max_page: int,
    ) -> None:
        self.schema = schema
        self.max_page = max_page
        self.fragments = fragments
        self.variables = variables
        self.default_page = default_page
        self.max_depth = 0
        self.aliases = 0
        self.nodes = 0
        self.visits = 0

    def walk(
        self,
        selection_set: SelectionSetNode | None,
        parent_type: Any,
        depth: int,
        multiplier: int,
        seen: frozenset[str] = frozenset(),
    ) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections or ():
            if isinstance(selection, FieldNode):
                self._field(selection, parent_type, depth, multiplier, seen)
            elif isinstance(selection, InlineFragmentNode):
                type_ = parent_type
                if selection.type_condition is not None:
                    type_ = self.schema.get_type(selection.type_condition.name.value) or type_
                self.walk(selection.selection_set, type_, depth, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                type_ = self.schema.get_type(fragment.type_condition.name.value) or parent_type
                self.walk(fragment.selection_set, type_, depth, multiplier, seen | {name})

    def _field(
        self, node: FieldNode, parent_type: Any, depth: int, multiplier: int, seen: frozenset[str]
    ) -> None:
        self.visits += 1
        if self.visits > MAX_FIELD_VISITS:
            raise _TooManyVisits
        name = node.name.value
        if node.alias is not None:
            self.aliases += 1
        if name.startswith("__"):
            return  # introspection: bounded by the token limit
        depth += 1
        self.max_depth = max(self.max_depth, depth)
        field_def = None
        if isinstance(parent_type, GraphQLObjectType) or hasattr(parent_type, "fields"):
            field_def = parent_type.fields.get(name)
        child_type = get_named_type(field_def.type) if field_def is not None else None
        size = self._page_size(node, field_def)
        if size is not None:
            multiplier *= max(size, 1)
            self.nodes += multiplier
        elif field_def is not None and _is_list(field_def.type):
            self.nodes += multiplier
        self.walk(node.selection_set, child_type, depth, multiplier, seen)

    def _page_size(self, node: FieldNode, field_def: Any) -> int | None:
        if field_def is None or not ({"first", "last"} & set(field_def.args)):
            return None
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                # An out-of-range size is the resolver's BAD_USER_INPUT, not a complexity error.
                if isinstance(value, IntValueNode):
                    return min(int(value.value), self.max_page)
                if isinstance(value, VariableNode):
                    raw = self.variables.get(value.name.value)
                    if isinstance(raw, int) and not isinstance(raw, bool):
                        return min(raw, self.max_page)
        for arg_name in ("first", "last"):
            arg = field_def.args.get(arg_name)
            if arg is not None and isinstance(arg.default_value, int):
                return arg.default_value
        return self.default_page


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def check_limits(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    settings: Settings,
) -> GraphQLError | None:
    """The first limit the operation breaks, as a QUERY_TOO_COMPLEX error, or None."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    walker = _Walker(
        schema, fragments, variables or {}, settings.default_page_size, settings.max_page_size
    )
    try:
        for operation in operations:
            root = schema.get_root_type(operation.operation)
            walker.walk(operation.selection_set, root, 0, 1)
    except _TooManyVisits:
        return graphql_error(
            QueryTooComplex(
                f"Query expands to more than {MAX_FIELD_VISITS} fields.", limit="fields"
            )
        )
    if walker.max_depth > settings.max_query_depth:
        return graphql_error(
            QueryTooComplex(
                f"Query depth {walker.max_depth} exceeds the limit of {settings.max_query_depth}.",
                limit="depth",
            )
        )
    if walker.aliases > settings.max_query_aliases:
        return graphql_error(
            QueryTooComplex(
                f"Query uses {walker.aliases} aliases; the limit is {settings.max_query_aliases}.",
                limit="aliases",
            )
        )
    if walker.nodes > settings.max_query_nodes:
        return graphql_error(
            QueryTooComplex(
                f"Query could return {walker.nodes} nodes; the limit is "
                f"{settings.max_query_nodes}. Ask for smaller pages.",
                limit="nodes",
            )
        )
    return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_nul_bytes(query: str | None, variables: dict[str, Any] | None) -> GraphQLError | None:
    """NUL characters in any string input (no text field may hold one; PostgreSQL can't).

    The query text is searched for the character and for its escape, cheaper than a walk of the
    parsed document on every request.
    """
    if _has_nul(variables or {}) or (query is not None and ("\x00" in query or "\\u0000" in query)):
        return graphql_error(BadUserInput("Strings may not contain NUL (\\u0000) characters."))
    return None


def make_query_limits(settings: Settings) -> type[SchemaExtension]:
    """The QueryLimits extension class bound to ``settings``."""

    class QueryLimits(SchemaExtension):
        """Refuses over-deep, over-aliased, over-large or over-long documents before execution."""

        def on_operation(self) -> Iterator[None]:
            self.execution_context.parse_options["max_tokens"] = settings.max_query_tokens
            yield

        def on_validate(self) -> Iterator[None]:
            # Strawberry decides inside the validation step whether to go on, so the check
            # runs before this hook yields: after ValidationCache (listed before this extension)
            # has validated the document, or after validating it here.
            context = self.execution_context
            if context.graphql_document is not None:
                if context.pre_execution_errors is None:
                    context.pre_execution_errors = validate_document(
                        context.schema._schema,
                        context.graphql_document,
                        context.validation_rules,
                    )
                if not context.pre_execution_errors:
                    error = check_nul_bytes(context.query, context.variables) or check_limits(
                        context.schema._schema,
                        context.graphql_document,
                        context.operation_name,
                        context.variables,
                        settings,
                    )
                    if error is not None:
                        context.pre_execution_errors = [error]
            yield

    return QueryLimits


# -- errors ---------------------------------------------------------------------------------


def _api_error(error: BaseException | None) -> ApiError | None:
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ApiError):
            return error
        error = getattr(error, "original_error", None) or error.__cause__
        seen += 1
    return None


def format_error(error: GraphQLError) -> GraphQLError:
    """Give ``error`` its ``extensions.code``; mask anything unexpected (and log it)."""
    extensions = dict(error.extensions or {})
    if "code" in extensions and error.original_error is None:
        return error
    api_error = _api_error(error.original_error)
    if api_error is not None:
        message = error.message
        if error.path is not None or isinstance(error.original_error, ApiError):
            message = api_error.message
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**api_error.extensions, **extensions, "code": api_error.code},
        )
    if isinstance(error, GraphQLSyntaxError):
        code = "QUERY_TOO_COMPLEX" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
        return _with_code(error, code)
    if error.original_error is None or isinstance(error.original_error, GraphQLError):
        # Document validation and variable coercion: readable as graphql-core wrote them.
        input_error = any(marker in error.message for marker in _INPUT_ERROR_MARKERS)
        return _with_code(error, "BAD_USER_INPUT" if input_error else "GRAPHQL_VALIDATION_FAILED")
    logger.error(
        "unexpected error at %s: %s",
        ".".join(str(p) for p in error.path or []) or "(operation)",
        error.message,
        exc_info=(
            type(error.original_error),
            error.original_error,
            error.original_error.__traceback__,
        ),
    )
    return GraphQLError(
        MASKED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": code},
    )


def format_errors(errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
    """``format_error`` over a result's errors."""
    if not errors:
        return errors
    return [format_error(error) for error in errors]


class ErrorCodes(SchemaExtension):
    """Applies ``format_error`` to every result, whichever transport carries it."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = format_errors(result.errors)


# -- the checks every transport runs ---------------------------------------------------------


def document_errors(schema: GraphQLSchema, document: Any, settings: Settings) -> list[GraphQLError]:
    """Everything that depends on the document alone: validation and the document-only limits.

    The result may be cached by query text (the websocket server does).
    """
    from graphql import validate

    return list(validate(schema, document))


def request_error(
    schema: GraphQLSchema,
    document: Any,
    query: str | None,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    settings: Settings,
) -> GraphQLError | None:
    """The first check that depends on this request's variables and operation name to fail:
    string hygiene of the variables, the choice of operation, the node count."""
    return check_nul_bytes(query, variables) or check_limits(
        schema, document, operation_name, variables, settings
    )
