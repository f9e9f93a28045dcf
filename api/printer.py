"""``python -m api.printer``: the schema in SDL, as committed in schema.graphql."""

from __future__ import annotations

from api.schema import build_schema
from settings import Settings


def printed_schema() -> str:
    """The SDL of the schema (settings don't change its shape)."""
    return build_schema(Settings()).as_str().rstrip() + "\n"


if __name__ == "__main__":
    print(printed_schema(), end="")
