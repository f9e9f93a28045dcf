"""The limits of one operation that its document alone decides, as graphql-core validation
rules: expansion, depth, aliases, expensive fields, introspection, and the node count when no
variable can change it.

Each rule measures every operation of the document it validates (one walk per operation,
shared by the rules of one validation) and reports its own QUERY_TOO_COMPLEX error; the first
rule to fail, in ``LIMIT_RULES`` order, is the answer. ``operation_limit`` validates the chosen
operation with its fragments against them, so that:

- a request is refused for the operation it runs, not for another one of its document, and a
  document of many operations costs one walk per request, not one per operation;
- the verdict is asked for after graphql-core's specified rules passed and after the request's
  own checks (variables, choice of operation), as it always was;
- the document cache keeps the verdict with the validated document, by operation name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, cast
from weakref import WeakKeyDictionary

from graphql import (
    SKIP,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    ValidationContext,
    ValidationRule,
    VisitorAction,
    validate,
)

from api.extensions.cost import MAX_FIELD_VISITS, TooManyVisits, Walker, too_complex, walk
from api.extensions.operations import definitions
from settings import Settings

# __schema / __type selections in one operation: GraphiQL asks once; each answer is the whole
# schema, built synchronously.
MAX_INTROSPECTION_FIELDS = 2

# The walk of each operation, per validation, read by every rule (None: the walk gave up). The
# rules drop it when they leave the document; weak keys, should a validation end before that.
_walks: WeakKeyDictionary[ValidationContext, dict[int, Walker | None]] = WeakKeyDictionary()


class OperationLimitRule(ValidationRule):
    """One limit, checked on each operation's walk; subclasses bound by ``operation_rules``."""

    settings: ClassVar[Settings]

    def enter_operation_definition(
        self, node: OperationDefinitionNode, *_args: object
    ) -> VisitorAction:
        """Check the operation on its walk; its selections are the walk's, not the visitor's."""
        walker = self._walk(node)
        error = self.gave_up() if walker is None else self.check(walker, node)
        if error is not None:
            self.report_error(error)
        return SKIP

    def leave_document(self, *_args: object) -> None:
        """The validation is over: its walks go (every rule has read them by now)."""
        _walks.pop(self.context, None)

    def _walk(self, operation: OperationDefinitionNode) -> Walker | None:
        walks = _walks.setdefault(self.context, {})
        key = id(operation)  # AST nodes hash by their content: identity is meant, and cheap
        if key not in walks:
            try:
                walks[key] = walk(
                    self.context.schema, self.context.document, [operation], None, self.settings
                )
            except TooManyVisits:
                walks[key] = None
        return walks[key]

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """This limit's error for the operation ``walker`` measured, or None."""
        raise NotImplementedError

    def gave_up(self) -> GraphQLError | None:
        """This limit's error when the walk gave up (nothing else can be measured then)."""
        return None


class ExpansionRule(OperationLimitRule):
    """Fragments that expand past MAX_FIELD_VISITS selections (spread twice per level, say)."""

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """Nothing to add once the walk finished."""
        return None

    def gave_up(self) -> GraphQLError | None:
        """The walk stopped at MAX_FIELD_VISITS."""
        return too_complex(f"Query expands to more than {MAX_FIELD_VISITS} fields.", "fields")


class DepthRule(OperationLimitRule):
    """Fields nested deeper than MAX_QUERY_DEPTH, fragments expanded."""

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """The deepest field against the limit."""
        limit = self.settings.max_query_depth
        if walker.max_depth > limit:
            return too_complex(
                f"Query depth {walker.max_depth} exceeds the limit of {limit}.", "depth"
            )
        return None


class AliasesRule(OperationLimitRule):
    """More than MAX_QUERY_ALIASES aliases, counted each time a fragment is spread."""

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """The aliases of the expanded operation against the limit."""
        limit = self.settings.max_query_aliases
        if walker.aliases > limit:
            return too_complex(
                f"Query uses {walker.aliases} aliases; the limit is {limit}.", "aliases"
            )
        return None


class ExpensiveFieldsRule(OperationLimitRule):
    """More than MAX_EXPENSIVE_FIELDS fields declared ``metadata={"expensive": True}``, each
    counted as many times as the lists above it can repeat it."""

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """The expensive fields against the limit."""
        limit = self.settings.max_expensive_fields
        if walker.expensive > limit:
            return too_complex(
                f"Query asks for {walker.expensive} expensive fields (password checks, trades, "
                f"settlements); the limit is {limit}.",
                "expensive",
            )
        return None


class IntrospectionRule(OperationLimitRule):
    """More than MAX_INTROSPECTION_FIELDS ``__schema``/``__type`` selections."""

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """The introspection roots against the limit."""
        if walker.introspection > MAX_INTROSPECTION_FIELDS:
            return too_complex(
                f"Query asks for __schema or __type {walker.introspection} times; the limit is "
                f"{MAX_INTROSPECTION_FIELDS}.",
                "introspection",
            )
        return None


class StaticNodesRule(OperationLimitRule):
    """More than MAX_QUERY_NODES nodes, for an operation without variables: with variables the
    sizes are the request's, counted after coercion (``variables.request_error``)."""

    def check(self, walker: Walker, operation: OperationDefinitionNode) -> GraphQLError | None:
        """The node count of the document alone against the limit."""
        if operation.variable_definitions:
            return None
        return too_many_nodes(walker.nodes, self.settings)


# In the order they are checked: the first to fail is the answer.
LIMIT_RULES: tuple[type[OperationLimitRule], ...] = (
    ExpansionRule,
    DepthRule,
    AliasesRule,
    ExpensiveFieldsRule,
    IntrospectionRule,
    StaticNodesRule,
)


@lru_cache(maxsize=32)
def operation_rules(settings: Settings) -> tuple[type[OperationLimitRule], ...]:
    """LIMIT_RULES bound to ``settings`` (graphql-core makes each rule from its context alone),
    made once per settings."""
    return tuple(
        cast(type[OperationLimitRule], type(rule.__name__, (rule,), {"settings": settings}))
        for rule in LIMIT_RULES
    )


def operation_limit(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    settings: Settings,
) -> GraphQLError | None:
    """The first limit of ``operation`` that the document alone breaks: expansion, depth,
    aliases, expensive fields, introspection, and the node count when no variable can change
    it. Validates ``operation`` with the fragments against ``operation_rules(settings)``, after
    the specified rules passed on the whole document; cacheable with the document."""
    _, fragments = definitions(document)
    alone = DocumentNode(definitions=(operation, *fragments.values()), loc=document.loc)
    errors = validate(schema, alone, operation_rules(settings))
    return errors[0] if errors else None


def too_many_nodes(nodes: int, settings: Settings) -> GraphQLError | None:
    """The node limit, on a count from the document alone or at a request's sizes."""
    if nodes > settings.max_query_nodes:
        return too_complex(
            f"Query could return {nodes} nodes; the limit is "
            f"{settings.max_query_nodes}. Ask for smaller pages or fewer ids.",
            "nodes",
        )
    return None
