"""The GraphQL layer's side of the websocket server: what the app lends the hub
(``realtime.ports.GraphQLLayer``): contexts with fresh loaders, the document checks and error
rule every transport shares, and queries and mutations over the socket run as over HTTP."""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode
from graphql.execution import Executor

from api import extensions
from api.context import Context, Services, SharedContext
from api.loaders import Loaders
from api.schema import AgoraSchema
from realtime.ports import Caller
from realtime.protocol.messages import ExecutionPayload
from settings import Settings


class LiveGraphQL:
    """``realtime.ports.GraphQLLayer`` for the schema, settings and services of the app.

    The checks are called through their module at call time, so whatever decides for HTTP
    decides for the socket too.
    """

    def __init__(self, schema: AgoraSchema, settings: Settings, services: Services) -> None:
        self.executable = schema
        self.settings = settings
        self.services = services

    @property
    def schema(self) -> GraphQLSchema:
        """The graphql-core schema under strawberry's."""
        return self.executable._schema

    @property
    def executor_class(self) -> type[Executor]:
        """The schema's execution context: the planned executor when FAST_EXECUTION is on."""
        executor: type[Executor] = self.executable.execution_context_class
        return executor

    def loaders(self) -> Loaders:
        """A fresh set of loaders: an event's, or a replay page's (no object budget)."""
        return Loaders()

    def context(self, loaders: Any, viewer: Any, *, shared: bool) -> Context:
        """A subscription execution's context: for ``viewer``, or shared (no viewer at all)."""
        # No client address: a group's context serves many sockets, and nothing a
        # subscription's selection reaches is rate limited.
        if shared:
            return SharedContext(settings=self.settings, services=self.services, loaders=loaders)
        return Context(
            settings=self.settings, services=self.services, loaders=loaders, viewer=viewer
        )

    def document_errors(self, document: DocumentNode) -> list[GraphQLError]:
        """``document_errors`` of HTTP's checks."""
        return extensions.document_errors(self.schema, document, self.settings)

    def request_error(
        self,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any],
        limits: dict[str | None, GraphQLError | None] | None = None,
    ) -> GraphQLError | None:
        """``request_error`` of HTTP's checks."""
        return extensions.request_error(
            self.schema, document, operation_name, variables, self.settings, limits=limits
        )

    def choose_operation(
        self, document: DocumentNode, operation_name: str | None
    ) -> OperationDefinitionNode | GraphQLError:
        """The operation the request runs, as HTTP chooses it."""
        return extensions.choose_operation(document, operation_name)

    def format_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """The one error rule."""
        return extensions.format_errors(errors) or []

    async def run_operation(
        self, query: str, variables: dict[str, Any], operation_name: str | None, caller: Caller
    ) -> ExecutionPayload:
        """A query or mutation over the socket, with the limits of HTTP's responses."""
        context = Context(
            settings=self.settings,
            services=self.services,
            viewer=caller.viewer,
            token=caller.token,
            client_address=caller.client_address,
            request=caller.request,
            loaders=Loaders(self.settings.max_response_objects),
            # The socket ran the request's checks before choosing to run it once.
            prechecked=True,
        )
        result = await self.executable.execute(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )
        payload: ExecutionPayload = {"data": result.data}
        limit = self.settings.max_response_bytes
        if context.loaders.budget.exceeded:
            # As over HTTP: never a truncated result, no data and one error.
            payload = {"data": None, "errors": [context.loaders.budget.error().formatted()]}
        elif result.data is not None and extensions.response_size_over(result.data, limit):
            payload = {"data": None, "errors": [extensions.response_too_large(limit)]}
        elif result.errors:
            payload["errors"] = [e.formatted for e in self.format_errors(list(result.errors))]
        return payload
