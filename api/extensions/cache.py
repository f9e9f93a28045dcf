"""The HTTP transport's document cache: parsed and checked documents by query text, bounded in
entries and in characters."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from graphql import DocumentNode, GraphQLError

# Characters of query text the document cache keeps in all (parsed, a few dozen times more).
CACHE_MAX_CHARS = 1024 * 1024


@dataclass
class CheckedDocument:
    """What the HTTP transport caches per query text: the parsed document, what
    ``document_errors`` said of it, and the verdict of the operation limit rules by operation
    name (filled as requests choose operations)."""

    document: DocumentNode
    errors: list[GraphQLError]
    limits: dict[str | None, GraphQLError | None] = field(default_factory=dict)


class DocumentCache:
    """The parsed and checked documents by query text, shared by every request of a schema,
    bounded by entries and by the characters of the texts it keeps (a parsed document is a
    few dozen times its text): a client sending new megabyte documents can't grow memory."""

    def __init__(self, size: int, max_chars: int) -> None:
        self.size = size
        self.max_chars = max_chars
        self.chars = 0
        self.items: OrderedDict[str, CheckedDocument] = OrderedDict()

    def get(self, key: str) -> CheckedDocument | None:
        """The entry for ``key``, now the most recently used; None when absent."""
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: str, value: CheckedDocument) -> None:
        """Keep ``value`` unless its text alone is over a tenth of the budget."""
        if len(key) > self.max_chars // 10 or key in self.items:
            return
        self.items[key] = value
        self.chars += len(key)
        while len(self.items) > self.size or self.chars > self.max_chars:
            old, _ = self.items.popitem(last=False)
            self.chars -= len(old)
