"""Persisted queries: Apollo's and urql's automatic persisted queries (the ``persistedQuery``
extension's sha256 hash of the document), and trusted documents (only registered operations
run, as GitHub and Shopify do).

APQ: a hash alone runs the document stored under it, or answers ``PERSISTED_QUERY_NOT_FOUND``
so the client resends it with its text; a text with its hash is checked against it (a mismatch
is ``BAD_USER_INPUT``) and stored once it passes the document checks. The store is bounded in
entries and characters (least recently used out first) and, with ``REDIS_URL``, shared through
Redis so every worker knows a hash another one learnt.

Trusted documents (``TRUSTED_DOCUMENTS``: a JSON file, ``{"<sha256>": "<document>"}`` as
graphql-codegen's client preset writes it, or Apollo's persisted-query manifest): only those
documents run, by hash or by text; registering new ones is refused with ``OPERATION_NOT_TRUSTED``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from graphql import GraphQLError

from accounts.ratelimit import RedisOutage, redis_client
from logs import get_logger
from settings import Settings, SettingsError

logger = get_logger("agora")

_HASH = re.compile(r"[0-9a-f]{64}")
# Keys on Redis; documents stay a day after their last registration.
REDIS_PREFIX = "agora:apq:"
REDIS_TTL_SECONDS = 24 * 3600
# Characters of documents kept in this process in all.
MAX_STORED_CHARS = 4 * 1024 * 1024
# The longest document shared through Redis (longer ones stay in the worker that learnt them):
# with the day's TTL, what one client can make Redis hold is bounded by its request rate.
REDIS_MAX_CHARS = 16 * 1024


class PersistedQueryError(Exception):
    """A persisted-query request that can't run: its code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sha256_hex(text: str) -> str:
    """The lowercase hex sha256 of ``text``'s UTF-8, as clients hash documents."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_trusted_documents(path: str) -> dict[str, str]:
    """The documents of a trusted-documents file by hash; SettingsError when it can't be used."""
    try:
        raw: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"TRUSTED_DOCUMENTS: cannot read {path!r}: {exc}") from exc
    if isinstance(raw, dict) and raw.get("format") == "apollo-persisted-query-manifest":
        pairs = [(op.get("id"), op.get("body")) for op in raw.get("operations") or []]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise SettingsError(f"TRUSTED_DOCUMENTS: {path!r} is not a JSON object of documents")
    documents: dict[str, str] = {}
    for key, body in pairs:
        if not isinstance(key, str) or not isinstance(body, str):
            raise SettingsError(f"TRUSTED_DOCUMENTS: {path!r} has a non-string entry")
        key = key.removeprefix("sha256:").lower()
        if key != sha256_hex(body):
            raise SettingsError(
                f"TRUSTED_DOCUMENTS: the entry {key[:16]}… of {path!r} is not the sha256 of its "
                "document (clients send sha256 hashes)"
            )
        documents[key] = body
    return documents


class PersistedQueries:
    """Resolves a request's query text from its persisted-query hash, and learns new ones."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.persisted_queries
        self.trusted: dict[str, str] | None = (
            load_trusted_documents(settings.trusted_documents)
            if settings.trusted_documents
            else None
        )
        self.local: OrderedDict[str, str] = OrderedDict()
        self.chars = 0
        self._redis: Any = None
        # While Redis is unreachable: this worker's documents only, one warning per outage,
        # and no request waits on a silent Redis more than once per retry period.
        self._outage = RedisOutage(
            "persisted queries",
            settings.redis_limits_timeout_ms / 1000,
            settings.redis_limits_retry_seconds,
        )

    async def start(self) -> None:
        """Connect to Redis when configured (the lifespan calls it)."""
        if self.settings.redis_url and self.enabled and self.trusted is None:
            self._redis = redis_client(
                self.settings.redis_url, self.settings.redis_limits_timeout_ms / 1000
            )

    async def stop(self) -> None:
        """Close the Redis connection."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @staticmethod
    def requested_hash(extensions: dict[str, Any] | None, document_id: Any) -> str | None:
        """The sha256 a request names (``extensions.persistedQuery`` or a ``documentId`` of
        ``sha256:<hex>``), or None; PersistedQueryError when it is malformed."""
        if document_id is not None:
            if not isinstance(document_id, str) or not document_id.startswith("sha256:"):
                raise PersistedQueryError(
                    "BAD_USER_INPUT", 'documentId must be "sha256:" and a hex sha256 hash.'
                )
            candidate: Any = document_id.removeprefix("sha256:")
        else:
            persisted = (extensions or {}).get("persistedQuery")
            if persisted is None:
                return None
            if not isinstance(persisted, dict):
                raise PersistedQueryError(
                    "BAD_USER_INPUT", "extensions.persistedQuery must be an object."
                )
            if persisted.get("version") != 1:
                raise PersistedQueryError(
                    "BAD_USER_INPUT", "Unsupported persisted query version (only 1 is)."
                )
            candidate = persisted.get("sha256Hash")
        if not isinstance(candidate, str) or not _HASH.fullmatch(candidate.lower()):
            raise PersistedQueryError(
                "BAD_USER_INPUT", "A persisted query's sha256Hash is 64 hexadecimal digits."
            )
        return candidate.lower()

    async def resolve(self, query: str | None, digest: str | None) -> tuple[str | None, bool]:
        """The query text to run and whether to remember it once it passes the checks."""
        if self.trusted is not None:
            return self._trusted(query, digest), False
        if digest is None:
            return query, False
        if not self.enabled:
            raise PersistedQueryError(
                "PERSISTED_QUERY_NOT_SUPPORTED", "Persisted queries are not enabled here."
            )
        if query is None:
            stored = await self._get(digest)
            if stored is None:
                raise PersistedQueryError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
            return stored, False
        if sha256_hex(query) != digest:
            raise PersistedQueryError(
                "BAD_USER_INPUT", "The persisted query's sha256Hash doesn't match its query."
            )
        return query, digest not in self.local

    async def for_socket(self, query: str | None, extensions: dict[str, Any] | None) -> str:
        """The text a websocket operation runs (``realtime.ports.ResolveQuery``): trusted
        documents apply as over HTTP, a hash alone runs what HTTP registered; registration
        itself happens over HTTP, where the document is checked first."""
        text = query
        if self.trusted is not None or (extensions and "persistedQuery" in extensions):
            try:
                text, _ = await self.resolve(query, self.requested_hash(extensions, None))
            except PersistedQueryError as refused:
                raise GraphQLError(refused.message, extensions={"code": refused.code}) from refused
        if text is None:
            raise GraphQLError(
                "No GraphQL query found in the message.", extensions={"code": "BAD_USER_INPUT"}
            )
        return text

    def _trusted(self, query: str | None, digest: str | None) -> str:
        assert self.trusted is not None
        if digest is None and query is not None:
            digest = sha256_hex(query)
        document = self.trusted.get(digest) if digest is not None else None
        if document is None or (query is not None and query != document):
            raise PersistedQueryError(
                "OPERATION_NOT_TRUSTED",
                "Only registered operations run on this server (trusted documents).",
            )
        return document

    async def remember(self, query: str) -> None:
        """Keep ``query`` under its hash (here, and on Redis when configured)."""
        digest = sha256_hex(query)
        self._keep(digest, query)
        if self._redis is not None and len(query) <= REDIS_MAX_CHARS:
            redis = self._redis
            # Redis down: this worker still knows it (RedisOutage logs the outage once).
            await self._outage.call(
                lambda: redis.set(REDIS_PREFIX + digest, query, ex=REDIS_TTL_SECONDS),
                count=False,
            )

    async def _get(self, digest: str) -> str | None:
        found = self.local.get(digest)
        if found is not None:
            self.local.move_to_end(digest)
            return found
        if self._redis is None:
            return None
        redis = self._redis
        raw = await self._outage.call(lambda: redis.get(REDIS_PREFIX + digest), count=False)
        if raw is None:
            return None
        text = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else str(raw)
        if sha256_hex(text) != digest:  # never run what doesn't hash to what was asked
            return None
        self._keep(digest, text)
        return text

    def _keep(self, digest: str, query: str) -> None:
        if digest in self.local or len(query) > MAX_STORED_CHARS // 10:
            return
        self.local[digest] = query
        self.chars += len(query)
        while len(self.local) > self.settings.persisted_query_cache_size or (
            self.chars > MAX_STORED_CHARS
        ):
            _, old = self.local.popitem(last=False)
            self.chars -= len(old)
