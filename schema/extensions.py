"""Schema extensions: query limits before execution, and one error rule for each kind.

Both hooks are synchronous: an async hook would make every field async (DESIGN.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
    KnownFragmentNamesRule,
    ListValueNode,
    Node,
    NoFragmentCyclesRule,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    specified_rules,
    validate,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from tortoise.exceptions import ValidationError as TortoiseValidationError

from api.core.errors import (
    ApiError,
    BadUserInput,
    QueryTooComplex,
    ResponseTooLarge,
    StreamingTransportRequired,
    graphql_error,
)
from db.health import is_database_down
from db.sql import unstorable_reason
from logs import get_logger, truncate
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


# Fragments spread twice per level expand exponentially: past this many selections visited
# (fields, spreads and inline fragments alike) the document is too complex whatever its other
# numbers are.
MAX_FIELD_VISITS = 20_000
# __schema / __type selections in one operation: GraphiQL asks once; each answer is the whole
# schema, built synchronously.
MAX_INTROSPECTION_FIELDS = 2
# Characters of query text the document cache keeps in all (parsed, a few dozen times more).
CACHE_MAX_CHARS = 1024 * 1024
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
    short plain list at its declared ``max_items`` (else SHORT_LIST_ITEMS), and every list
    given as an argument (ids, slugs,
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
        self.introspection = 0
        self.visits = 0

    def walk(
        self,
        selection_set: SelectionSetNode | None,
        parent_type: Any,
        depth: int,
        multiplier: int,
        seen: frozenset[str] = frozenset(),
    ) -> None:
        """Count ``selection_set`` of ``parent_type`` at ``depth``, each item ``multiplier``
        times (the product of the list sizes above it); ``seen``: fragments on this path."""
        if selection_set is None:
            return
        for selection in selection_set.selections or ():
            # Every selection costs a visit, spreads too: fragments that spread each other twice
            # per level (and end in nothing, or in a cycle) expand exponentially without a field.
            self.visits += 1
            if self.visits > MAX_FIELD_VISITS:
                raise _TooManyVisits
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
        name = node.name.value
        if node.alias is not None:
            self.aliases += 1
        if name in ("__schema", "__type"):
            # Introspection answers are large (the whole schema) and built synchronously.
            self.introspection += multiplier
        if name.startswith("__"):
            return  # the rest of introspection is bounded by the token and field limits
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
            # Python refuses int() of over 4,300 digits; any size past an int8 is "too big".
            text = value.value
            if len(text.lstrip("-")) > 18:
                return -(10**18) if text.startswith("-") else 10**18
            return int(text)
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
    """What graphql-core's overlapping-fields validation will pay, counted cheaply: the fields
    of the document with fragments expanded, a response key selected ``m`` times in one
    selection set counted ``m²`` times (and the selections under it merged), and ``k`` fragment
    spreads in one selection set ``k²`` times (it compares them pairwise too).

    2,000 repeats of one field held the loop for seconds and ended in "Validation aborted";
    400 spreads in one selection, 0.36 s. Stops counting past ``budget``.
    """
    operations, fragments = _definitions(document)
    cost = 0
    stack: list[list[SelectionSetNode]] = [[op.selection_set] for op in operations]
    stack.extend([f.selection_set] for f in fragments.values())
    while stack:
        groups: dict[str, list[FieldNode]] = {}
        pending = list(stack.pop())
        expanded: set[str] = set()  # each fragment once per merged set, as graphql-core memoises
        spreads = 0
        while pending:
            for selection in pending.pop().selections or ():
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    groups.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    spreads += 1
                    name = selection.name.value
                    fragment = fragments.get(name)
                    if fragment is not None and name not in expanded:
                        expanded.add(name)
                        pending.append(fragment.selection_set)
            cost += 1
            if cost > budget:
                return cost
        cost += spreads * spreads
        for nodes in groups.values():
            cost += len(nodes) * len(nodes)
            if cost > budget:
                return cost
            subsets = [n.selection_set for n in nodes if n.selection_set is not None]
            if subsets:
                stack.append(subsets)
    return cost


def _aliases_written(document: DocumentNode) -> int:
    """Aliases as written (each fragment once): a bound on validation's work, before it runs."""
    count = 0
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode) and node.alias is not None:
            count += 1
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


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


# graphql-core rules that are linear and make the walks below safe to run on an unvalidated
# document: every spread names a fragment, and no fragment spreads itself.
_FRAGMENT_RULES = (KnownFragmentNamesRule, NoFragmentCyclesRule)


def document_errors(
    schema: GraphQLSchema, document: DocumentNode, settings: Settings
) -> list[GraphQLError]:
    """Everything about the whole document, cheapest first and validation last: fragments that
    exist and don't cycle, the field cost (graphql-core's validation is quadratic in repeated
    fields and spreads), aliases as written, string literals, then validation itself.

    Limits of one operation (depth, aliases, expensive fields, nodes) are ``operation_limit``'s.
    Transports cache the result by query text.
    """
    errors = validate(schema, document, _FRAGMENT_RULES)
    if errors:
        return list(errors)
    cost = field_cost(document, settings.max_query_fields)
    if cost > settings.max_query_fields:
        return [
            _too_complex(
                f"Query selects more than {settings.max_query_fields} fields (a field or "
                "fragment repeated n times in one selection counts n² times).",
                "fields",
            )
        ]
    # Per operation the alias limit is exact (operation_limit); over the whole document, four
    # times it bounds what validation will compare.
    aliases = _aliases_written(document)
    if aliases > 4 * settings.max_query_aliases:
        return [
            _too_complex(
                f"Query uses {aliases} aliases; the limit is {settings.max_query_aliases}.",
                "aliases",
            )
        ]
    literal = string_literal_error(document)
    if literal is not None:
        return [literal]
    return list(validate_document(schema, document, tuple(specified_rules)))


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
        walker = _walk(schema, document, [operation], None, settings)
    except _TooManyVisits:
        return _too_complex(f"Query expands to more than {MAX_FIELD_VISITS} fields.", "fields")
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
    if walker.introspection > MAX_INTROSPECTION_FIELDS:
        return _too_complex(
            f"Query asks for __schema or __type {walker.introspection} times; the limit is "
            f"{MAX_INTROSPECTION_FIELDS}.",
            "introspection",
        )
    if not operation.variable_definitions:
        return _nodes_limit(walker, settings)
    return None


def _nodes_limit(walker: _Walker, settings: Settings) -> GraphQLError | None:
    if walker.nodes > settings.max_query_nodes:
        return _too_complex(
            f"Query could return {walker.nodes} nodes; the limit is "
            f"{settings.max_query_nodes}. Ask for smaller pages or fewer ids.",
            "nodes",
        )
    return None


def choose_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | GraphQLError:
    """The operation a request runs, or why there is none (BAD_USER_INPUT), as the spec says."""
    operations, _ = _definitions(document)
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
    # of one, 100.0 becomes 100). Values that don't coerce fail execution anyway, with
    # graphql-core's BAD_USER_INPUT; counting them raw until then is a safe bound.
    values = get_variable_values(
        schema, operation.variable_definitions, variables or {}, max_errors=1
    )
    coerced = variables or {} if isinstance(values, list) else values.coerced
    walker = _walk(schema, document, [operation], coerced, settings)
    return _nodes_limit(walker, settings)


@dataclass
class _Checked:
    """What the HTTP transport caches per query text."""

    document: DocumentNode
    errors: list[GraphQLError]
    limits: dict[str | None, GraphQLError | None] = field(default_factory=dict)


class _LRU:
    """The parsed and checked documents by query text, shared by every request of a schema,
    bounded by entries and by the characters of the texts it keeps (a parsed document is a
    few dozen times its text): a client sending new megabyte documents can't grow memory."""

    def __init__(self, size: int, max_chars: int) -> None:
        self.size = size
        self.max_chars = max_chars
        self.chars = 0
        self.items: OrderedDict[str, _Checked] = OrderedDict()

    def get(self, key: str) -> _Checked | None:
        """The entry for ``key``, now the most recently used; None when absent."""
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: str, value: _Checked) -> None:
        """Keep ``value`` unless its text alone is over a tenth of the budget."""
        if len(key) > self.max_chars // 10 or key in self.items:
            return
        self.items[key] = value
        self.chars += len(key)
        while len(self.items) > self.size or self.chars > self.max_chars:
            old, _ = self.items.popitem(last=False)
            self.chars -= len(old)


def make_query_limits(settings: Settings) -> type[SchemaExtension]:
    """The DocumentChecks extension class bound to ``settings``: it replaces strawberry's
    parsing cache and validation step with ``document_errors``, cached by query text, then runs
    ``request_error`` for this request."""
    cache = _LRU(settings.parser_cache_size, CACHE_MAX_CHARS)

    class DocumentChecks(SchemaExtension):
        """Refuses over-large, over-deep, over-aliased or malformed documents before execution."""

        def on_operation(self) -> Iterator[None]:
            self.execution_context.parse_options["max_tokens"] = settings.max_query_tokens
            yield

        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            query = context.query
            if query is not None:
                if len(query) > settings.max_query_chars:
                    raise graphql_error(
                        QueryTooComplex(
                            f"The document is {len(query)} characters long; the limit is "
                            f"{settings.max_query_chars}. Send long values as variables.",
                            limit="characters",
                        )
                    )
                cached = cache.get(query)
                if cached is not None:
                    context.graphql_document = cached.document
            yield

        def on_validate(self) -> Iterator[None]:
            # Strawberry validates only when no extension has (pre_execution_errors is None),
            # and decides whether to execute right after this hook: so the checks run here,
            # before it yields.
            context = self.execution_context
            document = context.graphql_document
            if document is not None:
                schema = context.schema._schema
                query = context.query
                checked = cache.get(query) if query is not None else None
                if checked is None:
                    checked = _Checked(document, document_errors(schema, document, settings))
                    if query is not None:
                        cache.put(query, checked)
                errors = checked.errors
                if not errors:
                    if _is_subscription_over_http(context, document):
                        errors = [
                            graphql_error(
                                StreamingTransportRequired(
                                    "Subscriptions need a streaming transport: the websocket "
                                    "at /graphql (graphql-transport-ws)."
                                )
                            )
                        ]
                    else:
                        # strawberry's operation_name falls back to the first operation's name.
                        provided = getattr(context, "_provided_operation_name", None)
                        error = request_error(
                            schema,
                            document,
                            provided,
                            context.variables,
                            settings,
                            limits=checked.limits,
                            context=context.context,
                        )
                        errors = [error] if error is not None else []
                context.pre_execution_errors = list(errors)
            yield

    return DocumentChecks


def _is_subscription_over_http(context: Any, document: DocumentNode) -> bool:
    """A subscription operation in a request that came over plain HTTP (strawberry would run the
    field's resolver, which never yields: realtime lives in the websocket server)."""
    request = getattr(context.context, "request", None)
    if getattr(request, "scope", {}).get("type") != "http":
        return False
    provided = getattr(context, "_provided_operation_name", None)
    operation = choose_operation(document, provided)
    return (
        isinstance(operation, OperationDefinitionNode)
        and operation.operation == OperationType.SUBSCRIPTION
    )


# -- the response ----------------------------------------------------------------------------


def response_size_over(value: Any, limit: int) -> bool:
    """Whether ``value`` as JSON would be over ``limit`` characters, estimated from what it holds
    and stopping as soon as it is: before anything is encoded. A string referenced many times
    counts each time (one article body under 84,000 aliases and ids is a small result and a
    245 MB body)."""
    size = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + sum(len(key) + 4 for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 8
        if size > limit:
            return True
    return False


def response_too_large(limit: int) -> dict[str, Any]:
    """The one error a response over MAX_RESPONSE_BYTES becomes."""
    return ResponseTooLarge(
        f"The response would exceed {limit} bytes. Ask for less.", limit="responseBytes"
    ).formatted()


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
    if error.path is None and any(marker in error.message for marker in _INPUT_ERROR_MARKERS):
        # A literal that fails its scalar during validation with a Python error (an integer of
        # 5,000 digits): the client's input, said as graphql-core says it.
        return _rewritten(error, truncate(error.message, 500), {"code": "BAD_USER_INPUT"})
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
