"""What a document costs, counted without executing it: the walk of one operation (depth,
aliases, expensive fields, introspection, GitHub-style node count, fragments expanded) and the
cheap bounds on what graphql-core's validation will pay (field cost, aliases as written).

Only measurements live here; the limits on them are ``documents`` (before validation),
``rules`` (one operation, as validation rules) and ``variables`` (per request).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
)

from api.core.errors import QueryTooComplex, graphql_error
from api.extensions.operations import definitions
from settings import Settings

# Fragments spread twice per level expand exponentially: past this many selections visited
# (fields, spreads and inline fragments alike) the document is too complex whatever its other
# numbers are.
MAX_FIELD_VISITS = 20_000
# A plain list field (no size argument, not a connection's edges/nodes) counts as this many
# items unless its definition declares ``metadata={"max_items": N}``: tags, outcomes and
# breadcrumbs are short, but a nested list of lists must still multiply.
SHORT_LIST_ITEMS = 10


class TooManyVisits(Exception):
    """The walk gave up: past MAX_FIELD_VISITS selections."""


def too_complex(message: str, limit: str) -> GraphQLError:
    """The QUERY_TOO_COMPLEX error of a limit; ``limit`` names it in ``extensions.limit``."""
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


class Walker:
    """Depth, aliases, expensive fields and GitHub-style node count of one operation, fragments
    expanded. Without variables (``variables is None``) it measures what the document alone
    decides; with them, the node count at the sizes this request asks for.

    Every list counts at its real size: a connection at its ``first``/``last``, ``nodes(ids:)``
    at the number of ids, ``relatedArticles(first:)`` and ``leaderboard(first:)`` at theirs, a
    short plain list at its declared ``max_items`` (else SHORT_LIST_ITEMS), and every list
    given as an argument (ids, slugs, outcomes: work the resolver does) adds its items.
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
        # The variables the counts read (a request's node count depends on nothing else):
        # as list sizes, and inside arguments (which count only their lists' items).
        self.read: set[str] = set()
        self.read_in_arguments: set[str] = set()
        self._reads = self.read

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
                raise TooManyVisits
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
            self._reads.add(value.name.value)
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
        self._reads = self.read_in_arguments
        try:
            stack: list[Any] = [self._value(a.value) for a in node.arguments or ()]
        finally:
            self._reads = self.read
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                total += len(value)
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
        return total


def walk(
    schema: GraphQLSchema,
    document: DocumentNode,
    operations: list[OperationDefinitionNode],
    variables: dict[str, Any] | None,
    settings: Settings,
) -> Walker:
    """``operations`` of ``document`` walked by one Walker (``variables``: see Walker); raises
    TooManyVisits past MAX_FIELD_VISITS."""
    _, fragments = definitions(document)
    walker = Walker(schema, fragments, variables, settings)
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
    operations, fragments = definitions(document)
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


def aliases_written(document: DocumentNode) -> int:
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
