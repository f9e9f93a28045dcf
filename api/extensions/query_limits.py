"""The DocumentChecks extension: the query limits of every HTTP request, before execution.

It replaces strawberry's parser cache, validation cache and validation step: the query-text
size first (before parsing), then the document checks (``document_errors``) cached with the
parsed document by query text, then the request checks (``request_error``), whose
document-only part is cached in the same entry. Its hooks are synchronous: an async hook would
make every field async (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import DocumentNode, OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension

from api.core.errors import QueryTooComplex, StreamingTransportRequired, graphql_error
from api.extensions.cache import CACHE_MAX_CHARS, CheckedDocument, DocumentCache
from api.extensions.documents import document_errors
from api.extensions.operations import choose_operation
from api.extensions.variables import request_error
from settings import Settings


def make_query_limits(settings: Settings) -> type[SchemaExtension]:
    """The DocumentChecks extension class bound to ``settings``: it replaces strawberry's
    parsing cache and validation step with ``document_errors``, cached by query text, then runs
    ``request_error`` for this request."""
    documents = DocumentCache(settings.parser_cache_size, CACHE_MAX_CHARS)

    class DocumentChecks(SchemaExtension):
        """Refuses over-large, over-deep, over-aliased or malformed documents before execution."""

        # The schema's document cache, one per build_schema: readable for inspection.
        cache: ClassVar[DocumentCache] = documents

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
                cached = documents.get(query)
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
                checked = documents.get(query) if query is not None else None
                if checked is None:
                    checked = CheckedDocument(document, document_errors(schema, document, settings))
                    if query is not None:
                        documents.put(query, checked)
                errors = checked.errors
                if getattr(context.context, "prechecked", False):
                    # The HTTP view ran the request's checks already (and refused subscriptions).
                    pass
                elif not errors:
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
