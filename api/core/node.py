"""Relay global IDs (opaque base64 of "Type:pk"), the Node interface, and row converters."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, ForwardRef, get_args, get_origin

import strawberry
from strawberry.types.lazy_type import LazyType, StrawberryLazyReference

from api.core.errors import BadUserInput

NODE_TYPES = (
    "Article",
    "Author",
    "Category",
    "Tag",
    "Comment",
    "User",
    "Market",
    "Outcome",
    "Trade",
)


@lru_cache(maxsize=8_192, typed=True)
def to_global_id(type_name: str, pk: int) -> str:
    """The opaque ID clients see for row ``pk`` of ``type_name`` (kept: a page encodes ~90;
    typed: ``True`` is not ``1``)."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def from_global_id(global_id: str, *expected: str) -> tuple[str, int]:
    """(type name, pk) of a global ID; BAD_USER_INPUT if malformed or of an unexpected type."""
    try:
        raw = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
        type_name, _, pk_text = raw.partition(":")
        if (
            type_name not in NODE_TYPES
            or not (pk_text.isascii() and pk_text.isdigit())
            or len(pk_text) > 10
        ):
            raise ValueError(raw)
        pk = int(pk_text)
        if pk >= 2**31:  # ids are int4: a bigger one can't be ours
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise BadUserInput(f"Malformed ID {global_id[:64]!r}.", field="id") from exc
    if expected and type_name not in expected:
        raise BadUserInput(
            f"ID {global_id!r} is a {type_name}, expected {' or '.join(expected)}.", field="id"
        )
    return type_name, pk


@strawberry.interface(description="An object with a global ID: any of them is `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="The global, opaque ID of this object.")


def row_converter(node_type: Any) -> Callable[[Any], Any]:
    """``node_type.from_row``, for a type or a ``strawberry.lazy`` annotation of one.

    A lazy type (another domain's, named by module) is imported on first use, so the domains of
    the GraphQL layer reference each other's types without importing each other's modules.
    """
    lazy: LazyType[Any, Any] | None = None
    if get_origin(node_type) is Annotated:
        target, *extras = get_args(node_type)
        for extra in extras:
            if isinstance(extra, StrawberryLazyReference):
                name = target if isinstance(target, ForwardRef) else ForwardRef(str(target))
                lazy = extra.resolve_forward_ref(name)
    if lazy is None:
        return node_type.from_row
    resolved: list[Callable[[Any], Any]] = []

    def convert(row: Any) -> Any:
        if not resolved:
            resolved.append(lazy.resolve_type().from_row)
        return resolved[0](row)

    return convert


def pk_of(global_id: strawberry.ID | str, type_name: str) -> int:
    """The row id behind an input's global ID of ``type_name``; BAD_USER_INPUT otherwise."""
    return from_global_id(str(global_id), type_name)[1]
