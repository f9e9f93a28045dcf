"""Relay global IDs: opaque base64 of "Type:pk"."""

from __future__ import annotations

import base64
import binascii

from schema.errors import BadUserInput

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


def to_global_id(type_name: str, pk: int) -> str:
    """The opaque ID clients see for row ``pk`` of ``type_name``."""
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
