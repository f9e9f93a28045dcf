"""Which subscriptions may share one execution between viewers, decided from the schema.

A field whose value depends on who is asking says so where it is defined, in its strawberry
metadata (``{VIEWER_DEPENDENT: True}``: ``api.core.viewer.VIEWER``). A document selecting such a
field runs per viewer: its group is keyed by the viewer and executed with the real one. Any other
is shared: executed once for all its subscribers with a context whose viewer can't be read, so a
field that reads the viewer without saying so fails (``ViewerUnreachable``, logged, a masked
error in the payload) instead of handing one user's data to everyone in the group.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    BREAK,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)

from logs import get_logger

logger = get_logger("agora.ws")

# The metadata key of a viewer-dependent field.
VIEWER_DEPENDENT = "viewer"


class ViewerUnreachable(Exception):
    """Raised by a shared execution's context when a resolver reads the viewer."""


def depends_on_viewer(field: GraphQLField) -> bool:
    """Whether ``field``'s definition declares that its value depends on the viewer."""
    definition = (field.extensions or {}).get("strawberry-definition")
    return bool((getattr(definition, "metadata", None) or {}).get(VIEWER_DEPENDENT))


def reads_viewer(schema: GraphQLSchema, document: DocumentNode) -> bool:
    """Whether ``document`` selects a viewer-dependent field anywhere (every operation and
    fragment of it, resolved against ``schema``: over-counting only costs sharing)."""
    type_info = TypeInfo(schema)
    found = False

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> Any:
            nonlocal found
            field = type_info.get_field_def()
            if field is not None and depends_on_viewer(field):
                found = True
                return BREAK
            return None

    visit(document, TypeInfoVisitor(type_info, Finder()))
    return found


def report_viewer_reads(field_name: str, errors: list[GraphQLError]) -> None:
    """Log each error of a shared execution that comes from reading the viewer: a field that
    must be declared viewer-dependent (its value is masked in the payload meanwhile)."""
    for error in errors:
        if isinstance(error.original_error, ViewerUnreachable):
            where = ".".join(str(p) for p in error.path or ()) or field_name
            logger.error(
                "%s read the viewer in an execution shared between viewers: declare the field "
                "viewer-dependent (metadata %r) so it runs per viewer",
                where,
                {VIEWER_DEPENDENT: True},
            )
