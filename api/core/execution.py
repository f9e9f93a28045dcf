"""A faster executor for plain queries, chosen by the shape of the operation.

graphql-core completes every field through a chain of generic calls (field lookup, resolve
info, argument coercion, completion by type, a coroutine and a gather per async field): on an
article page that was more than a third of the CPU. ``FastExecutionContext`` runs a *query*
(also a mutation or a subscription event with one root field: the hub runs each event of a
group on the schema's execution context) whose selections are plain fields (aliases allowed;
no fragments, no directives, no abstract types, no introspection but ``__typename``) from a
plan built once per parsed operation:

- each field's resolver is the one graphql-core would call, with the same resolve info and the
  same coerced arguments (strawberry's conversion, field extensions and permissions included);
  a plain attribute is read directly;
- the tree is run level by level: every field of a level is resolved, then all that level's
  awaitables are awaited together (so loaders still see one batch per level), then the objects
  they returned are expanded into the next level;
- any error, null in a non-null position, unexpected value or unsupported shape abandons the
  fast run and the operation runs on graphql-core's executor, which *replays* what each resolver
  already called gave (its value, or its exception) instead of calling it again: errors, their
  paths and partial data are exactly graphql-core's, and nothing is read twice (a resolver that
  failed on a database timeout is not retried, so an outage answers as fast as before). Loaders
  keep what the abandoned run loaded; the response budget keeps what it counted.

``tests/core/test_fast_execution.py`` checks that both executors answer the same over a corpus.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from copy import copy
from dataclasses import dataclass, field, is_dataclass
from enum import Enum
from functools import partial
from typing import Any

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from api.core.dataloader import Then
from api.core.refusals import count_refusals_in, counted_resolver, counted_when_done

# Plans kept per parsed operation (the document cache hands back the same node objects).
MAX_PLANS = 512


@dataclass
class FastStats:
    """How many operations ran on the plan, and how many went back to graphql-core after
    starting there (tests read it: a comparison that never took the fast path proves nothing)."""

    fast: int = 0
    fallback: int = 0


stats = FastStats()


class _Fallback(Exception):
    """The fast run can't answer exactly as graphql-core would: run graphql-core instead."""


@dataclass
class _Field:
    key: str
    name: str
    node: FieldNode
    nodes: list[FieldNode]
    definition: GraphQLField | None  # None: __typename
    resolve: Callable[..., Any] | None
    attribute: str | None  # a plain strawberry field: read this attribute
    has_args: bool
    type: GraphQLOutputType | None
    plan: _Object | None = None  # the selection on the named object type, if any
    direct: _Direct | None = None  # call the strawberry resolver itself (see _direct)
    leaf: _Leaf | None = None  # a plain attribute of a scalar or enum type, not a list
    # Across the requests of this operation (cache_arguments fields only): the converted
    # arguments by their coerced values (strawberry's conversion cost ~25 µs a field).
    conversions: dict[tuple[Any, ...], dict[str, Any]] | None = None
    # The completion of a resolved value, specialised to the field's type (see _completer);
    # None: the generic ``_complete``.
    complete: Callable[..., Any] | None = None
    # A field of the Query root: called once per request, so its conversions are kept across
    # requests even with input-object arguments (``articles(filter: …)``), copied for each call.
    root_query: bool = False


@dataclass(frozen=True)
class _Leaf:
    """How a plain scalar attribute completes: what graphql-core's completion of a leaf does
    (null in a non-null position is an error: graphql-core reports it), a str for String and
    ID as it is (their serialize returns a str unchanged)."""

    non_null: bool
    serialize: Callable[[Any], Any]
    text: bool


@dataclass(frozen=True)
class _Direct:
    """How to call a strawberry field's own resolver function, skipping the wrappers strawberry
    puts around it (they convert the arguments on every call: ``replies(first: 5)`` under ten
    comments converted ``first`` ten times). Only for fields without field extensions or
    exception handlers, where those wrappers do nothing else."""

    strawberry_field: Any
    function: Callable[..., Any]
    arguments: list[Any]  # StrawberryArgument
    pass_self: bool
    parent: str | None  # keyword names the function takes the source and the info under
    root: str | None
    info: str | None
    # Converted once per operation only when no argument can hold a list or an input object
    # (a resolver changing one would change it for the next parent).
    cache_arguments: bool
    # strawberry converts an async field's arguments inside its coroutine: a conversion error
    # is then the awaited call's, as graphql-core would see it.
    is_async: bool
    # A mutation field whose refusals api.core.refusals counts (its wrapper, by field name):
    # the direct call's payload is counted the same way.
    counted: str | None = None


@dataclass
class _Object:
    type: GraphQLObjectType
    fields: list[_Field] = field(default_factory=list)
    # What an output dict of this selection adds to the response's estimated JSON size besides
    # its values, as api.extensions.response.response_size_over counts it: braces, keys, quotes.
    size: int = 2


# ``Path(prev, key, typename)`` without the NamedTuple's generated ``__new__`` (a Python
# lambda: 2.3 % of a home feed's CPU, one a field and list item): the same tuple, made in C.
_path: Callable[[tuple[Path | None, str | int, str | None]], Path] = partial(tuple.__new__, Path)


def _named(output: Any) -> Any:
    while isinstance(output, (GraphQLNonNull, GraphQLList)):
        output = output.of_type
    return output


def _plain_attribute(definition: GraphQLField) -> str | None:
    """The attribute a strawberry field without a resolver reads, or None."""
    resolve = definition.resolve
    if resolve is None or getattr(resolve, "__name__", "") != "_get_basic_result":
        return None
    strawberry_field = definition.extensions.get("strawberry-definition")
    name = getattr(strawberry_field, "python_name", None)
    return name if isinstance(name, str) else None


def _leaf(output: GraphQLOutputType) -> _Leaf | None:
    """The completion of a scalar or enum (or its non-null), or None for anything else."""
    non_null = isinstance(output, GraphQLNonNull)
    named = output.of_type if isinstance(output, GraphQLNonNull) else output
    if not isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
        return None
    text = named is GraphQLString or named is GraphQLID
    return _Leaf(non_null, named.serialize, text)


def _direct(definition: GraphQLField) -> _Direct | None:
    """The direct call of ``definition``'s strawberry resolver, or None (call ``resolve``)."""
    resolve = definition.resolve
    counted = None
    wrapped = counted_resolver(resolve)
    if wrapped is not None:
        # count_refusals' wrapper around strawberry's resolver (every mutation field).
        counted, resolve = wrapped
    if resolve is None or getattr(resolve, "__name__", "") not in ("_resolver", "_async_resolver"):
        return None
    handlers = _cells(resolve).get("field_exception_handlers")
    if handlers is None or len(handlers) > 0:
        return None
    field = definition.extensions.get("strawberry-definition")
    resolver = getattr(field, "base_resolver", None)
    if field is None or resolver is None or field.extensions:
        return None
    function = resolver.wrapped_func
    if not callable(function):
        return None
    parameters = (resolver.parent_parameter, resolver.root_parameter, resolver.info_parameter)
    parent, root, info = (p.name if p is not None else None for p in parameters)
    immutable = all(
        isinstance(_unwrapped(argument.type), (GraphQLScalarType, GraphQLEnumType))
        for argument in definition.args.values()
    )
    return _Direct(
        field,
        function,
        list(field.arguments),
        resolver.self_parameter is not None,
        parent,
        root,
        info,
        immutable,
        resolve.__name__ == "_async_resolver",
        counted,
    )


def _cells(function: Any) -> dict[str, Any]:
    """The variables ``function`` closes over, by name."""
    code = function.__code__
    closure = function.__closure__ or ()
    return dict(zip(code.co_freevars, (cell.cell_contents for cell in closure), strict=True))


def _unwrapped(type_: Any) -> Any:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _plan_object(
    schema: GraphQLSchema, object_type: GraphQLObjectType, selection_set: SelectionSetNode
) -> _Object | None:
    plan = _Object(object_type)
    keys: set[str] = set()
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if key in keys:  # repeated keys merge their selections: graphql-core's job
            return None
        keys.add(key)
        name = selection.name.value
        if name == "__typename":
            plan.fields.append(
                _Field(key, name, selection, [selection], None, None, None, False, None)
            )
            continue
        if name.startswith("__"):
            return None
        definition = object_type.fields.get(name)
        if definition is None:
            return None
        named = _named(definition.type)
        attribute = _plain_attribute(definition)
        entry = _Field(
            key,
            name,
            selection,
            [selection],
            definition,
            definition.resolve,
            attribute if not (definition.args or selection.arguments) else None,
            bool(definition.args or selection.arguments),
            definition.type,
        )
        entry.direct = _direct(definition)
        entry.root_query = object_type is schema.query_type
        if entry.attribute is not None:
            entry.leaf = _leaf(definition.type)
        if isinstance(named, GraphQLObjectType):
            if selection.selection_set is None:
                return None
            sub = _plan_object(schema, named, selection.selection_set)
            if sub is None:
                return None
            entry.plan = sub
        elif not isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
            return None  # interfaces and unions: resolve_type is graphql-core's
        elif selection.selection_set is not None:
            return None
        if entry.attribute is None or entry.leaf is None:
            entry.complete = _completer(definition.type, entry.plan)
        plan.fields.append(entry)
    plan.size = 2 + sum(4 + len(entry.key) for entry in plan.fields)
    return plan


def _value_size(value: Any) -> int:
    """A completed value's share of the estimate (response_size_over's counts); an object's
    dict counts when its level is run."""
    kind = value.__class__
    if kind is str:
        return len(value) + 2
    if kind is dict:
        return 0
    if kind is list:
        return 2 + len(value) + sum(map(_value_size, value))
    return 8


def _completer(output: GraphQLOutputType, plan: _Object | None) -> Callable[..., Any] | None:
    """What ``FastExecutionContext._complete`` does for a value of ``output``, as one function
    made for the field's type at planning: an object, a leaf, or a list of either (nullable or
    not), or None for other shapes (lists of lists: the generic completion). Every check of the
    generic path is kept (null in a non-null position, an exception or awaitable as a value,
    the object type's ``is_type_of``, a leaf that doesn't serialize: all abandon the run); on an
    article page completion was a tenth of the CPU, most of it dispatching on the type again
    for each item of each list."""
    non_null = isinstance(output, GraphQLNonNull)
    named = output.of_type if isinstance(output, GraphQLNonNull) else output
    inner = _list_of(named.of_type, plan) if isinstance(named, GraphQLList) else _one(named, plan)
    if inner is None:
        return None

    def complete(
        value: Any, following: list[_Pending], path: Path, info: Any, is_awaitable: Any
    ) -> Any:
        if value is None:
            if non_null:
                raise _Fallback
            return None
        return inner(value, following, path, info, is_awaitable)

    return complete


def _list_of(item_type: Any, plan: _Object | None) -> Callable[..., Any] | None:
    """The completion of one non-null list of ``item_type`` (an object, scalar or enum, null
    or not), or None for other items (a list of lists)."""
    item_non_null = isinstance(item_type, GraphQLNonNull)
    item = _one(item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type, plan)
    if item is None:
        return None

    def complete_list(
        value: Any, following: list[_Pending], path: Path, info: Any, is_awaitable: Any
    ) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Fallback  # (an exception or an awaitable too)
        completed: list[Any] = []
        append = completed.append
        for index, element in enumerate(value):
            if element is None:
                if item_non_null:
                    raise _Fallback
                append(None)
            else:
                append(item(element, following, _path((path, index, None)), info, is_awaitable))
        return completed

    return complete_list


def _one(named: Any, plan: _Object | None) -> Callable[..., Any] | None:
    """The completion of one non-null value of a named object, scalar or enum type."""
    if isinstance(named, GraphQLObjectType):
        if plan is None:
            return None
        is_type_of = named.is_type_of
        # An instance of the type's own strawberry class, not cast to another type, passes
        # every check below (a fifth of completing an object): tested by its class alone.
        definition = named.extensions.get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        if (
            getattr(definition, "is_type_of", None) is not None  # the type's own test
            or not isinstance(origin, type)
            or issubclass(origin, Exception)
            or hasattr(origin, "__await__")
        ):
            origin = None

        def complete_object(
            value: Any, following: list[_Pending], path: Path, info: Any, is_awaitable: Any
        ) -> Any:
            if value.__class__ is not origin or getattr(value, TYPE_CAST_ATTRIBUTE, None):
                if isinstance(value, Exception) or is_awaitable(value):
                    raise _Fallback
                if is_type_of is not None and is_type_of(value, info) is not True:
                    raise _Fallback
            out: dict[str, Any] = {}
            following.append((plan, value, out, path))
            return out

        return complete_object
    if isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
        serialize = named.serialize
        text = named is GraphQLString or named is GraphQLID

        def complete_leaf(
            value: Any, following: list[_Pending], path: Path, info: Any, is_awaitable: Any
        ) -> Any:
            if text and value.__class__ is str:
                return value
            if isinstance(value, Exception) or is_awaitable(value):
                raise _Fallback
            serialized = serialize(value)
            if serialized is None or serialized is Undefined:
                raise _Fallback
            return serialized

        return complete_leaf
    return None


def plan_operation(schema: GraphQLSchema, operation: OperationDefinitionNode) -> _Object | None:
    """The plan of a query the fast executor can run, or None (run graphql-core)."""
    if operation.directives:
        return None
    kind = operation.operation
    # A mutation or a subscription event with one root field: graphql-core's serial execution
    # of a mutation's root is then a query's (its resolver still runs once: a fallback replays
    # what it gave), and an event's root field hands on the event (the per-event executor's
    # root value), its selection then as in a query.
    if kind != OperationType.QUERY and len(operation.selection_set.selections) != 1:
        return None
    root = schema.get_root_type(kind)
    if root is None:
        return None
    return _plan_object(schema, root, operation.selection_set)


# Weak in the operation: a plan lives as long as its document does elsewhere (the document
# cache) and pins no document itself.
_plans: dict[
    tuple[int, int],
    tuple[GraphQLSchema, weakref.ref[OperationDefinitionNode], _Object | None],
] = {}


def _forget_plan(key: tuple[int, int]) -> Callable[[Any], None]:
    def forget(reference: Any) -> None:
        entry = _plans.get(key)
        if entry is not None and entry[1] is reference:
            del _plans[key]

    return forget


def _cached_plan(schema: GraphQLSchema, operation: OperationDefinitionNode) -> _Object | None:
    key = (id(schema), id(operation))
    entry = _plans.get(key)
    # The ids are only valid while the objects live: the entry is checked against them.
    if entry is not None and entry[0] is schema and entry[1]() is operation:
        return entry[2]
    try:
        plan = plan_operation(schema, operation)
    except RecursionError:
        plan = None  # nested deeper than Python recurses: graphql-core reports it
    if len(_plans) >= MAX_PLANS:
        _plans.pop(next(iter(_plans)))
    _plans[key] = (schema, weakref.ref(operation, _forget_plan(key)), plan)
    return plan


_Pending = tuple[_Object, Any, dict[str, Any], Path | None]

# Converted argument sets kept per field of a plan (the oldest goes first), and the most text
# a kept set's strings may hold: a client's 1 MB slug, 64 times over in each of the document
# cache's operations, would otherwise be gigabytes kept (the node-count cache's bound too).
MAX_CONVERSIONS = 64
MAX_CONVERSION_KEY_CHARS = 512
_IMMUTABLE = (str, int, float, bool, type(None))


def _conversion_key(raw: dict[str, Any], inputs: bool = False) -> tuple[Any, ...] | None:
    """``raw`` (coerced scalar and enum arguments; with ``inputs``, input objects and lists of
    them too) as a key, or None if a value isn't plainly immutable (an enum's value is kept by
    its class too: ``1`` and ``True`` differ there) or its strings are longer than
    ``MAX_CONVERSION_KEY_CHARS`` together."""
    chars = 0

    def frozen(value: Any, depth: int = 0) -> Any:
        # Flat input objects only (their values scalars, enums or lists of them): a kept
        # conversion is then copied whole by _fresh. Every value counts against the bound.
        nonlocal chars
        chars += len(value) if isinstance(value, str) else 1
        if chars > MAX_CONVERSION_KEY_CHARS:
            raise _Unkeyable
        if inputs and depth == 0 and value.__class__ is dict:
            return (dict, tuple((name, frozen(item, 1)) for name, item in value.items()))
        if inputs and depth < 2 and value.__class__ is list:
            return (list, tuple(frozen(item, 2) for item in value))
        if not isinstance(value, (_IMMUTABLE, Enum)):
            raise _Unkeyable
        return (value.__class__, value)

    try:
        return tuple((name, frozen(value)) for name, value in raw.items())
    except _Unkeyable:
        return None


class _Unkeyable(Exception):
    """An argument set that can't be a conversion key."""


def _fresh(converted: dict[str, Any]) -> dict[str, Any]:
    """A kept conversion for one more call: each input object (a strawberry input's instance)
    and each list copied, with the lists it holds (kept inputs are flat: _conversion_key), so a
    resolver changing its argument changes nobody else's."""
    return {name: _copied(value) for name, value in converted.items()}


def _copied(value: Any) -> Any:
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        duplicate = copy(value)
        for name, item in vars(value).items():
            if isinstance(item, list):
                setattr(duplicate, name, list(item))
        return duplicate
    return value


async def _raise_later(exc: Exception) -> Any:
    """An awaitable that raises ``exc`` (an async field's error, where graphql-core meets it)."""
    raise exc


class _Replay:
    """A graphql-core middleware manager that answers each field already resolved by the fast
    run with what its resolver gave then (asynchronously if it was awaited)."""

    middlewares = ()

    def __init__(self, outcomes: list[tuple[Path, bool, Any, bool]]) -> None:
        # path -> (awaited, value or exception, raised)
        self.outcomes = {
            tuple(path.as_list()): (awaited, value, raised)
            for path, awaited, value, raised in outcomes
        }

    def get_field_resolver(self, resolve: Callable[..., Any]) -> Callable[..., Any]:
        """``resolve``, or the recorded outcome where there is one."""
        outcomes = self.outcomes

        def replayed(source: Any, info: Any, **args: Any) -> Any:
            outcome = outcomes.pop(tuple(info.path.as_list()), None)
            if outcome is None:
                return resolve(source, info, **args)
            awaited, value, raised = outcome
            if not awaited:
                if raised:
                    raise value
                return value

            async def later() -> Any:
                if raised:
                    raise value
                return value

            return later()

        return replayed


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with plain queries run from a plan (module docstring)."""

    # Per fast run: each field's converted arguments by id(_Field); None: no direct calls.
    _converted: dict[int, dict[str, Any]] | None = None
    # The last fast run's estimated response size (see _run).
    _size: int = 0

    def execute_operation(self, serially: bool | None = None) -> Any:
        """The fast run when the operation's shape allows it, else graphql-core's."""
        context = self.context_value
        if getattr(context, "response_size", None) is not None:
            context.response_size = None  # a context executed before: no stale estimate
        middleware = self.middleware_manager
        # Strawberry hands over a manager without middleware (its extensions are hooks around
        # execution): with real middleware every field is wrapped, graphql-core's job.
        if (middleware is not None and middleware.middlewares) or self.abort_signal is not None:
            return super().execute_operation(serially)
        plan = _cached_plan(self.schema, self.operation)
        if plan is None:
            return super().execute_operation(serially)
        return self._execute_fast(plan, serially)

    async def _execute_fast(self, plan: _Object, serially: bool | None) -> Any:
        strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        if strawberry_schema is not None:  # else no direct calls (_converted stays None)
            self._info_class = strawberry_schema.config.info_class
            self._config = strawberry_schema.config
            self._scalar_registry = strawberry_schema.schema_converter.scalar_registry
            self._converted = {}
        return await self._execute_plain(plan, serially)

    async def _execute_plain(self, plan: _Object, serially: bool | None) -> Any:
        outcomes: list[tuple[Path, bool, Any, bool]] = []
        try:
            data = await self._run(plan, outcomes)
        except Exception:  # _Fallback, or any failure: graphql-core reports it its own way
            data = None
        if data is None:
            stats.fallback += 1
            self.middleware_manager = _Replay(outcomes)  # type: ignore[assignment]
            result = super().execute_operation(serially)
            if self.is_awaitable(result):
                return await result
            return result
        stats.fast += 1
        context = self.context_value
        if hasattr(context, "response_size"):
            context.response_size = self._size
        return self.finish(self.build_response(data))

    async def _run(
        self, plan: _Object, outcomes: list[tuple[Path, bool, Any, bool]]
    ) -> dict[str, Any]:
        data: dict[str, Any] = {}
        level: list[_Pending] = [(plan, self.root_value, data, None)]
        is_awaitable = self.is_awaitable
        # The response's JSON size as response_size_over estimates it, counted on the way.
        size = 0
        # What the levels run so far wait for: awaited together once no object is left to
        # expand without them (below).
        waiting: list[tuple[_Field, Awaitable[Any], dict[str, Any], Path, Any]] = []
        while level:
            following: list[_Pending] = []
            try:
                for object_plan, source, out, path in level:
                    type_name = object_plan.type.name
                    size += object_plan.size
                    for entry in object_plan.fields:
                        if entry.definition is None:
                            out[entry.key] = type_name
                            size += len(type_name) + 2
                            continue
                        if entry.attribute is not None:
                            value = getattr(source, entry.attribute)
                            leaf = entry.leaf
                            if leaf is not None:
                                # A scalar attribute (most of a page): completed here, no path.
                                if value is None:
                                    if leaf.non_null:
                                        raise _Fallback
                                    out[entry.key] = None
                                    size += 8
                                elif leaf.text and value.__class__ is str:
                                    out[entry.key] = value
                                    size += len(value) + 2
                                else:
                                    serialized = leaf.serialize(value)
                                    if serialized is None or serialized is Undefined:
                                        raise _Fallback
                                    out[entry.key] = serialized
                                    size += _value_size(serialized)
                                continue
                            field_path = _path((path, entry.key, type_name))
                            info = None
                        else:
                            field_path = _path((path, entry.key, type_name))
                            try:
                                info, value = self._resolve(
                                    entry, object_plan.type, source, field_path
                                )
                            except Exception as exc:
                                outcomes.append((field_path, False, exc, True))
                                raise
                            if is_awaitable(value):
                                out[entry.key] = None  # keeps the key's place in the output
                                waiting.append((entry, value, out, field_path, info))
                                continue
                            outcomes.append((field_path, False, value, False))
                        completed = self._completed(entry, value, following, field_path, info)
                        out[entry.key] = completed
                        size += _value_size(completed)
            except BaseException:
                for _, awaitable, _, _, _ in waiting:
                    if asyncio.iscoroutine(awaitable):
                        awaitable.close()
                    elif isinstance(awaitable, asyncio.Future):
                        awaitable.cancel()  # (its error, if it has one, is never asked for)
                raise
            if following and waiting:
                # Objects completed without waiting (a connection's edges, their nodes) are
                # expanded first: their loads join the ones still pending, in the same batches
                # (the home feed's tags, under latest.edges.node, went a turn and a statement
                # hand-off after the markets' outcomes, one level up).
                level = following
                continue
            if waiting:
                values: list[Any]
                if len(waiting) == 1:
                    # One awaitable (a mutation's field, say): awaited here, without a task.
                    try:
                        values = [await waiting[0][1]]
                    except Exception as exc:
                        values = [exc]
                else:
                    # All of the level at once: the loaders batch what the level asks for. A
                    # pending load's conversion (``then``) is waited for by its load's own
                    # future and converted here, as its awaiting would convert it. (Cancelling
                    # this execution cancels those loads: its loaders' own, which a later load
                    # of the key makes anew.)
                    values = await asyncio.gather(
                        *(w[1].loaded if w[1].__class__ is Then else w[1] for w in waiting),
                        return_exceptions=True,
                    )
                    for index, (_, awaitable, _, _, _) in enumerate(waiting):
                        if awaitable.__class__ is Then:
                            loaded = values[index]
                            if not isinstance(loaded, BaseException):
                                try:
                                    values[index] = awaitable.convert(loaded)
                                except Exception as exc:
                                    values[index] = exc
                for (_, _, _, field_path, _), value in zip(waiting, values, strict=True):
                    outcomes.append((field_path, True, value, isinstance(value, BaseException)))
                for (entry, _, out, field_path, info), value in zip(waiting, values, strict=True):
                    if isinstance(value, BaseException):
                        raise _Fallback from value
                    completed = self._completed(entry, value, following, field_path, info)
                    out[entry.key] = completed
                    size += _value_size(completed)
                waiting = []
            level = following
        self._size = size
        return data

    def _resolve(
        self, entry: _Field, parent: GraphQLObjectType, source: Any, path: Path
    ) -> tuple[Any, Any]:
        definition = entry.definition
        assert definition is not None
        info = self.build_resolve_info(definition, entry.nodes, parent, path)
        direct = entry.direct
        converted_by_field = self._converted
        if direct is None or converted_by_field is None:
            args = (
                get_argument_values(
                    definition, entry.node, self.variable_values, None, self.hide_suggestions
                )
                if entry.has_args
                else {}
            )
            resolve = entry.resolve or self.field_resolver
            return info, resolve(source, info, **args)
        strawberry_info = self._info_class(_raw_info=info, _field=direct.strawberry_field)
        # An operation's arguments depend on nothing but its variables: converted once per
        # field of the operation, whatever the number of parents.
        converted = converted_by_field.get(id(entry)) if direct.cache_arguments else None
        if converted is None:
            raw = (
                get_argument_values(
                    definition, entry.node, self.variable_values, None, self.hide_suggestions
                )
                if entry.has_args
                else {}
            )
            key = (
                _conversion_key(raw, entry.root_query)
                if (direct.cache_arguments or entry.root_query) and direct.arguments
                else None
            )
            known = entry.conversions
            if key is not None and known is not None:
                converted = known.get(key)
                if converted is not None and not direct.cache_arguments:
                    converted = _fresh(converted)
            if converted is None:
                try:
                    converted = (
                        convert_arguments(
                            raw,
                            direct.arguments,
                            scalar_registry=self._scalar_registry,
                            config=self._config,
                            info=strawberry_info,
                        )
                        if direct.arguments
                        else {}
                    )
                except Exception as exc:
                    if direct.is_async:
                        return info, _raise_later(exc)
                    raise
                if key is not None:
                    if known is None:
                        known = entry.conversions = {}
                    elif len(known) >= MAX_CONVERSIONS:
                        known.pop(next(iter(known)))
                    # (An input object is kept as converted, before its resolver sees it.)
                    known[key] = converted if direct.cache_arguments else _fresh(converted)
            if direct.cache_arguments:
                converted_by_field[id(entry)] = converted
        kwargs = dict(converted)
        if direct.parent is not None:
            kwargs[direct.parent] = source
        if direct.root is not None:
            kwargs[direct.root] = source
        if direct.info is not None:
            kwargs[direct.info] = strawberry_info
        value = direct.function(source, **kwargs) if direct.pass_self else direct.function(**kwargs)
        if direct.counted is not None:
            if self.is_awaitable(value):
                return info, counted_when_done(direct.counted, value)
            count_refusals_in(direct.counted, value)
        return info, value

    def _completed(
        self, entry: _Field, value: Any, following: list[_Pending], path: Path, info: Any
    ) -> Any:
        """``value`` completed for ``entry``: by its specialised completion, or the generic."""
        complete = entry.complete
        if complete is not None:
            return complete(value, following, path, info, self.is_awaitable)
        return self._complete(entry, entry.type, value, following, path, info)

    def _complete(
        self,
        entry: _Field,
        output: Any,
        value: Any,
        following: list[_Pending],
        path: Path,
        info: Any,
    ) -> Any:
        if isinstance(output, GraphQLNonNull):
            completed = self._complete(entry, output.of_type, value, following, path, info)
            if completed is None:
                raise _Fallback
            return completed
        if value is None:
            return None
        if isinstance(value, Exception) or self.is_awaitable(value):
            raise _Fallback
        if isinstance(output, GraphQLList):
            if not isinstance(value, (list, tuple)):
                raise _Fallback
            item_type = output.of_type
            return [
                self._complete(entry, item_type, item, following, _path((path, index, None)), info)
                for index, item in enumerate(value)
            ]
        if isinstance(output, GraphQLObjectType):
            if output.is_type_of is not None:
                matches = output.is_type_of(value, info)
                if matches is not True:
                    raise _Fallback
            out: dict[str, Any] = {}
            assert entry.plan is not None
            following.append((entry.plan, value, out, path))
            return out
        serialized = output.serialize(value)
        if serialized is None or serialized is Undefined:
            raise _Fallback
        return serialized
