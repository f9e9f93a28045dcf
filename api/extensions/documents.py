"""The checks of a whole document, whatever the request: cheapest first, graphql-core's
validation last. Transports cache their result by query text.

graphql-core's validation is quadratic in repeated fields and spreads, and answers a
RecursionError with "Validation aborted.": the cheap bounds run before it, on the unvalidated
document, once the two linear fragment rules made the walks safe.
"""

from __future__ import annotations

import re

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    KnownFragmentNamesRule,
    NoFragmentCyclesRule,
    NoSchemaIntrospectionCustomRule,
    specified_rules,
    validate,
)
from strawberry.schema.schema import validate_document

from api.extensions.cost import aliases_written, field_cost, too_complex
from api.extensions.errors import rewritten
from api.extensions.strings import string_literal_error
from settings import Settings

# graphql-core rules that are linear and make the walks below safe to run on an unvalidated
# document: every spread names a fragment, and no fragment spreads itself.
FRAGMENT_RULES = (KnownFragmentNamesRule, NoFragmentCyclesRule)
# graphql-core's suggestions at the end of a validation message.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def document_errors(
    schema: GraphQLSchema, document: DocumentNode, settings: Settings
) -> list[GraphQLError]:
    """Everything about the whole document, cheapest first and validation last: fragments that
    exist and don't cycle, the field cost (graphql-core's validation is quadratic in repeated
    fields and spreads), aliases as written, string literals, then validation itself
    (graphql-core's specified rules and strawberry's own).

    Limits of one operation (depth, aliases, expensive fields, nodes) are ``operation_limit``'s.
    Transports cache the result by query text.
    """
    errors = validate(schema, document, FRAGMENT_RULES)
    if errors:
        return list(errors)
    cost = field_cost(document, settings.max_query_fields)
    if cost > settings.max_query_fields:
        return [
            too_complex(
                f"Query selects more than {settings.max_query_fields} fields (a field or "
                "fragment repeated n times in one selection counts n² times).",
                "fields",
            )
        ]
    # Per operation the alias limit is exact (operation_limit); over the whole document, four
    # times it bounds what validation will compare.
    aliases = aliases_written(document)
    if aliases > 4 * settings.max_query_aliases:
        return [
            too_complex(
                f"Query uses {aliases} aliases; the limit is {settings.max_query_aliases}.",
                "aliases",
            )
        ]
    literal = string_literal_error(document)
    if literal is not None:
        return [literal]
    rules = tuple(specified_rules)
    if not settings.introspection:
        # __schema and __type are refused; __typename stays (clients' caches need it).
        rules += (NoSchemaIntrospectionCustomRule,)
    errors = list(validate_document(schema, document, rules))
    return [without_suggestions(error, settings) for error in errors]


def without_suggestions(error: GraphQLError, settings: Settings) -> GraphQLError:
    """``error`` without graphql-core's "Did you mean …" where suggestions are off: they list
    the schema's names to anyone guessing them."""
    if settings.field_suggestions:
        return error
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return rewritten(error, message, dict(error.extensions or {}))
