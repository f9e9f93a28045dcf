"""The DocumentChecks extension: the query limits of every request strawberry executes.

It replaces strawberry's parser cache, validation cache and validation step: the query-text
size first (before parsing), then the document checks (``document_errors``) cached with the
parsed document by query text (``check``, which the HTTP view calls itself before execution),
then the request checks (``request_error``), whose document-only part is cached in the same
entry, unless the transport ran them already. Its hooks are synchronous: an async hook would
make every field async (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from graphql import GraphQLSchema, parse
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from api.core.errors import QueryTooComplex, graphql_error
from api.extensions.cache import CACHE_MAX_CHARS, CheckedDocument, DocumentCache
from api.extensions.documents import document_errors
from api.extensions.variables import request_error
from settings import Settings

# ``check(schema, query)``: the query parsed and checked (cached by its text); GraphQLError when
# it is too long or doesn't parse.
DocumentCheck = Callable[[GraphQLSchema, str], CheckedDocument]


def make_query_limits(settings: Settings) -> type[SchemaExtension]:
    """The DocumentChecks extension class bound to ``settings``: it replaces strawberry's
    parsing cache and validation step with ``document_errors``, cached by query text, then runs
    ``request_error`` for this request."""
    documents = DocumentCache(settings.parser_cache_size, CACHE_MAX_CHARS)

    def check_document(schema: GraphQLSchema, query: str) -> CheckedDocument:
        if len(query) > settings.max_query_chars:
            raise graphql_error(
                QueryTooComplex(
                    f"The document is {len(query)} characters long; the limit is "
                    f"{settings.max_query_chars}. Send long values as variables.",
                    limit="characters",
                )
            )
        cached = documents.get(query)
        if cached is None:
            document = parse(query, max_tokens=settings.max_query_tokens)
            cached = CheckedDocument(document, document_errors(schema, document, settings))
            documents.put(query, cached)
        return cached

    class DocumentChecks(SchemaExtension):
        """Refuses over-large, over-deep, over-aliased or malformed documents before execution."""

        # The schema's document cache, one per build_schema: readable for inspection.
        cache: ClassVar[DocumentCache] = documents
        # What the HTTP view checks a document with before execution: the same cache.
        check: ClassVar[DocumentCheck] = staticmethod(check_document)

        checked: CheckedDocument | None = None

        def on_operation(self) -> Iterator[None]:
            self.execution_context.parse_options["max_tokens"] = settings.max_query_tokens
            yield

        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            if context.query is not None:
                try:
                    self.checked = check_document(context.schema._schema, context.query)
                    context.graphql_document = self.checked.document
                except GraphQLSyntaxError:
                    pass  # strawberry's own parse reports it
            yield

        def on_validate(self) -> Iterator[None]:
            # Strawberry validates only when no extension has (pre_execution_errors is None),
            # and decides whether to execute right after this hook: so the checks run here,
            # before it yields.
            context = self.execution_context
            document = context.graphql_document
            if document is not None:
                schema = context.schema._schema
                checked = self.checked or CheckedDocument(
                    document, document_errors(schema, document, settings)
                )
                errors = checked.errors
                if not errors and not getattr(context.context, "prechecked", False):
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
