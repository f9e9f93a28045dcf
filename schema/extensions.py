"""Schema extensions: query limits before execution, and one error rule for each kind.

Both hooks are synchronous: an async hook would make every field async (DESIGN.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    specified_rules,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from tortoise.exceptions import ValidationError as TortoiseValidationError

from db.health import is_database_down
from logs import get_logger, truncate
from schema.errors import ApiError, BadUserInput, QueryTooComplex, graphql_error
from settings import Settings

logger = get_logger("agora.errors")

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
# A plain list field (no size argument, not a connection's edges/nodes) counts as this many
# items unless its definition declares ``metadata={"max_items": N}``: tags, outcomes and
# breadcrumbs are short, but a nested list of lists must still multiply.
SHORT_LIST_ITEMS = 10


class _TooManyVisits(Exception):
    """The walk gave up."""


def _too_complex(message: str, limit: str) -> GraphQLError:
    return graphql_error(QueryTooComplex(message, limit=limit))


def _metadata(field_def: Any) -> Mapping[str, Any]:
    definition = (field_def.extensions or {}).get("strawberry-definition")
    return getattr(definition, "metadata", None) or {}


def _unwrap(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return type_


def _is_list(type_: Any) -> bool:
    return isinstance(_unwrap(type_), GraphQLList)


class _Walker:
    """Depth, aliases, expensive fields and GitHub-style node count of one operation, fragments
    expanded. Without variables (``variables is None``) it measures what the document alone
    decides; with them, the node count at the sizes this request asks for.

    Every list counts at its real size: a connection at its ``first``/``last``, ``nodes(ids:)``
    at the number of ids, ``relatedArticles(first:)`` and ``leaderboard(first:)`` at theirs, a
    short plain list at its declared bound, and every list given as an argument (ids, slugs,
    outcomes: work the resolver does) adds its items.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any] | None,
        settings: Settings,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables or {}
        self.settings = settings
        self.max_list = max(settings.max_page_size, settings.max_node_ids)
        self.max_depth = 0
        self.aliases = 0
        self.nodes = 0
        self.expensive = 0
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
            return  # introspection: bounded by the token and field limits
        depth += 1
        self.max_depth = max(self.max_depth, depth)
        fields = getattr(parent_type, "fields", None)
        field_def = fields.get(name) if fields is not None else None
        if field_def is None:
            return  # validation reports it
        if _metadata(field_def).get("expensive"):
            self.expensive += multiplier
        self.nodes += multiplier * self._argument_items(node)
        size = self._list_size(node, field_def, parent_type)
        if size is not None:
            multiplier *= max(size, 1)
            self.nodes += multiplier
        self.walk(node.selection_set, get_named_type(field_def.type), depth, multiplier, seen)

    def _list_size(self, node: FieldNode, field_def: Any, parent_type: Any) -> int | None:
        """How many items this field returns at most, or None for a single object."""
        args = field_def.args
        if "first" in args or "last" in args:
            for argument in node.arguments or ():
                if argument.name.value in ("first", "last"):
                    value = self._value(argument.value)
                    # An out-of-range size is the resolver's BAD_USER_INPUT, not a complexity
                    # error: count it at the largest size a resolver accepts.
                    if isinstance(value, int) and not isinstance(value, bool):
                        return min(max(value, 0), self.max_list)
            for arg_name in ("first", "last"):
                arg = args.get(arg_name)
                if arg is not None and isinstance(arg.default_value, int):
                    return int(arg.default_value)
            return self.settings.default_page_size
        if not _is_list(field_def.type):
            return None
        for argument in node.arguments or ():
            arg_def = args.get(argument.name.value)
            if arg_def is not None and _is_list(arg_def.type):  # nodes(ids:): one per id
                value = self._value(argument.value)
                return min(len(value), self.max_list) if isinstance(value, list) else 1
        if getattr(parent_type, "name", "").endswith("Connection"):
            return 1  # edges / nodes: the connection field has multiplied already
        if not isinstance(get_named_type(field_def.type), GraphQLObjectType | GraphQLInterfaceType):
            return 1  # a list of scalars is part of its object (probabilities, a field path)
        declared = _metadata(field_def).get("max_items")
        return int(declared) if declared is not None else SHORT_LIST_ITEMS

    def _value(self, value: ValueNode) -> Any:
        """An argument's value: the variable's (as sent) or the literal's."""
        if isinstance(value, VariableNode):
            return self.variables.get(value.name.value)
        if isinstance(value, ListValueNode):
            return [self._value(v) for v in value.values]
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, ObjectValueNode):
            return {f.name.value: self._value(f.value) for f in value.fields}
        return None

    def _argument_items(self, node: FieldNode) -> int:
        """The items of every list inside this field's arguments, however nested."""
        total = 0
        stack: list[Any] = [self._value(a.value) for a in node.arguments or ()]
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                total += len(value)
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
        return total


def _definitions(
    document: DocumentNode,
) -> tuple[list[OperationDefinitionNode], dict[str, FragmentDefinitionNode]]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return operations, fragments


def _walk(
    schema: GraphQLSchema,
    document: DocumentNode,
    operations: list[OperationDefinitionNode],
    variables: dict[str, Any] | None,
    settings: Settings,
) -> _Walker:
    _, fragments = _definitions(document)
    walker = _Walker(schema, fragments, variables, settings)
    for operation in operations:
        root = schema.get_root_type(operation.operation)
        walker.walk(operation.selection_set, root, 0, 1)
    return walker


def field_cost(document: DocumentNode, budget: int) -> int:
    """The fields of the document with fragments expanded, a response key selected ``m`` times
    in one selection set counted ``m²`` times (and the selections under it merged).

    That is what graphql-core's overlapping-fields validation pays: it compares every pair of
    same-named fields, and their sub-selections pairwise again, so 2,000 repeats of one field
    held the loop for seconds and ended in "Validation aborted". Stops counting past ``budget``.
    """
    operations, fragments = _definitions(document)
    cost = 0
    stack: list[list[SelectionSetNode]] = [[op.selection_set] for op in operations]
    while stack:
        groups: dict[str, list[FieldNode]] = {}
        pending = list(stack.pop())
        expanded: set[str] = set()  # each fragment once per merged set, as graphql-core memoises
        while pending:
            for selection in pending.pop().selections or ():
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    groups.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = fragments.get(name)
                    if fragment is not None and name not in expanded:
                        expanded.add(name)
                        pending.append(fragment.selection_set)
        for nodes in groups.values():
            cost += len(nodes) * len(nodes)
            if cost > budget:
                return cost
            subsets = [n.selection_set for n in nodes if n.selection_set is not None]
            if subsets:
                stack.append(subsets)
    return cost


def _bad_string(value: str) -> str | None:
    """Why ``value`` can't be stored or sent, or None: NUL (PostgreSQL can't hold it) and lone
    surrogates (no database, and no UTF-8 encoder, accepts them)."""
    if "\x00" in value:
        return "Strings may not contain NUL (\\u0000) characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Strings may not contain lone surrogates (\\ud800–\\udfff)."
    return None


def string_literal_error(document: DocumentNode) -> GraphQLError | None:
    """A string literal in the document that no string input may hold, as BAD_USER_INPUT."""
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, StringValueNode):
            reason = _bad_string(node.value)
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
            reason = _bad_string(value)
            if reason is not None:
                return graphql_error(BadUserInput(reason))
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def document_errors(
    schema: GraphQLSchema, document: DocumentNode, settings: Settings
) -> list[GraphQLError]:
    """Everything that depends on the document alone, cheapest first and validation last: the
    field cost (graphql-core's validation is quadratic in repeated fields and recurses on them),
    depth, aliases and expensive fields, string literals, then validation.

    Transports cache the result by query text.
    """
    fields = field_cost(document, settings.max_query_fields)
    if fields > settings.max_query_fields:
        return [
            _too_complex(
                f"Query selects more than {settings.max_query_fields} fields (a field repeated "
                "n times in one selection counts n² times).",
                "fields",
            )
        ]
    # The rest of the document-only limits, still before validation (which is the costly part):
    # the walk stops at unknown fields and types and within MAX_FIELD_VISITS.
    operations, _ = _definitions(document)
    try:
        walker = _walk(schema, document, operations, None, settings)
    except _TooManyVisits:
        return [_too_complex(f"Query expands to more than {MAX_FIELD_VISITS} fields.", "fields")]
    limit = _document_limit(walker, settings)
    if limit is not None:
        return [limit]
    literal = string_literal_error(document)
    if literal is not None:
        return [literal]
    return list(validate_document(schema, document, tuple(specified_rules)))


def _document_limit(walker: _Walker, settings: Settings) -> GraphQLError | None:
    if walker.max_depth > settings.max_query_depth:
        return _too_complex(
            f"Query depth {walker.max_depth} exceeds the limit of {settings.max_query_depth}.",
            "depth",
        )
    if walker.aliases > settings.max_query_aliases:
        return _too_complex(
            f"Query uses {walker.aliases} aliases; the limit is {settings.max_query_aliases}.",
            "aliases",
        )
    if walker.expensive > settings.max_expensive_fields:
        return _too_complex(
            f"Query asks for {walker.expensive} expensive fields (password checks, trades, "
            f"settlements); the limit is {settings.max_expensive_fields}.",
            "expensive",
        )
    return None


def request_error(
    schema: GraphQLSchema,
    document: DocumentNode,
    query: str | None,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    settings: Settings,
) -> GraphQLError | None:
    """The first check that depends on this request's variables and operation name to fail:
    the strings in the variables, the choice of operation, the node count at the sizes asked.
    Run after ``document_errors`` found nothing."""
    error = variables_error(variables)
    if error is not None:
        return error
    operations, _ = _definitions(document)
    if operation_name is None:
        if len(operations) > 1:
            return graphql_error(
                BadUserInput("Must provide operation name if query contains multiple operations.")
            )
    else:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
        if not operations:
            return graphql_error(BadUserInput(f"Unknown operation named '{operation_name}'."))
    coerced: dict[str, Any] = {}
    for operation in operations:
        # Count at the values execution will see (a single value for a list variable becomes a
        # list of one, 100.0 becomes 100). Values that don't coerce fail execution anyway, with
        # graphql-core's BAD_USER_INPUT; counting them raw until then is a safe bound.
        values = get_variable_values(
            schema, operation.variable_definitions or (), variables or {}, max_errors=1
        )
        if isinstance(values, list):  # errors
            coerced.update(variables or {})
        else:
            coerced.update(values.coerced)
    walker = _walk(schema, document, operations, coerced, settings)
    if walker.nodes > settings.max_query_nodes:
        return _too_complex(
            f"Query could return {walker.nodes} nodes; the limit is "
            f"{settings.max_query_nodes}. Ask for smaller pages or fewer ids.",
            "nodes",
        )
    return None


class _LRU:
    """A small LRU map (query text → document errors), shared by every request of a schema."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, list[GraphQLError]] = OrderedDict()

    def get(self, key: str) -> list[GraphQLError] | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: str, value: list[GraphQLError]) -> None:
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)


def make_query_limits(settings: Settings) -> type[SchemaExtension]:
    """The DocumentChecks extension class bound to ``settings``: it replaces strawberry's
    validation step (and ValidationCache) with ``document_errors``, cached by query text, then
    runs ``request_error`` for this request."""
    cache = _LRU(settings.validation_cache_size)

    class DocumentChecks(SchemaExtension):
        """Refuses over-large, over-deep, over-aliased or malformed documents before execution."""

        def on_operation(self) -> Iterator[None]:
            self.execution_context.parse_options["max_tokens"] = settings.max_query_tokens
            yield

        def on_validate(self) -> Iterator[None]:
            # Strawberry validates only when no extension has (pre_execution_errors is None),
            # and decides whether to execute right after this hook: so the checks run here,
            # before it yields.
            context = self.execution_context
            document = context.graphql_document
            if document is not None:
                schema = context.schema._schema
                key = context.query
                errors = cache.get(key) if key is not None else None
                if errors is None:
                    errors = document_errors(schema, document, settings)
                    if key is not None:
                        cache.put(key, errors)
                if not errors:
                    # strawberry's operation_name falls back to the first operation's name.
                    provided = getattr(context, "_provided_operation_name", None)
                    error = request_error(
                        schema, document, key, provided, context.variables, settings
                    )
                    errors = [error] if error is not None else []
                context.pre_execution_errors = list(errors)
            yield

    return DocumentChecks


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
        return _rewritten(
            error, message, {**api_error.extensions, **extensions, "code": api_error.code}
        )
    if isinstance(error, GraphQLSyntaxError):
        code = "QUERY_TOO_COMPLEX" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
        return _with_code(error, code)
    if error.original_error is None or isinstance(error.original_error, GraphQLError):
        # Document validation and variable coercion: readable as graphql-core wrote them.
        input_error = any(marker in error.message for marker in _INPUT_ERROR_MARKERS)
        return _with_code(error, "BAD_USER_INPUT" if input_error else "GRAPHQL_VALIDATION_FAILED")
    where = ".".join(str(p) for p in error.path or []) or "(operation)"
    original = error.original_error
    if is_database_down(original):
        logger.warning("database unavailable at %s: %s", where, truncate(repr(original)))
        return _rewritten(
            error, "The database is unavailable; retry shortly.", {"code": "SERVICE_UNAVAILABLE"}
        )
    if isinstance(original, TortoiseValidationError):
        # A value the model refuses (longer than its column, say) that no resolver checked
        # first: still the client's input, never an internal error.
        logger.warning("unchecked input at %s: %s", where, truncate(str(original)))
        return _rewritten(
            error,
            "A value is not acceptable for this field (too long, perhaps).",
            {"code": "BAD_USER_INPUT"},
        )
    logger.error(
        "unexpected error at %s: %s",
        where,
        error.message,
        exc_info=(type(original), original, original.__traceback__),
    )
    return _rewritten(error, MASKED_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def _rewritten(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    """``error`` at the same place, with another message and extensions."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    return _rewritten(error, error.message, {**(error.extensions or {}), "code": code})


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
