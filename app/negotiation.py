"""Which response a request's ``Accept`` header asks for, among what /graphql can answer.

Media ranges are compared by their ``q`` (ties: the first written wins); parameters may be
quoted or not. A missing header, ``*/*`` and ``application/*`` mean ``application/json`` (what
every client before the GraphQL-over-HTTP spec expected). Multipart only counts with a
``subscriptionSpec`` parameter (Apollo's subscription protocol): ``deferSpec`` alone asks for
incremental delivery, which isn't served, so such a client gets its other choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Media(StrEnum):
    """A kind of response /graphql can give."""

    GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
    JSON = "application/json"
    EVENT_STREAM = "text/event-stream"
    MULTIPART = "multipart/mixed"

    @property
    def streams(self) -> bool:
        """Whether this is a streaming transport (subscriptions can run over it)."""
        return self in (Media.EVENT_STREAM, Media.MULTIPART)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header."""

    type: str
    params: dict[str, str]
    q: float


def split_unquoted(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it isn't inside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_media_type(text: str) -> tuple[str, dict[str, str]]:
    """``type/subtype; a=b; c="d"`` → (``type/subtype``, {a: b, c: d}), lowercased names."""
    head, *rest = split_unquoted(text, ";")
    params: dict[str, str] = {}
    for param in rest:
        name, sep, value = param.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name.strip().lower()] = value
    return head.strip().lower(), params


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header, in the order written (bounded: 64 at most)."""
    ranges = []
    for entry in split_unquoted(header, ",")[:64]:
        if not entry.strip():
            continue
        media_type, params = parse_media_type(entry)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        if not 0 <= q <= 1:  # NaN and out-of-range values mean nothing
            q = 0.0
        ranges.append(MediaRange(media_type, params, q))
    return ranges


def _names(entry: MediaRange, media: Media) -> bool:
    """Whether ``entry`` names ``media`` itself (not through a wildcard)."""
    if entry.type != media.value:
        return False
    return media is not Media.MULTIPART or "subscriptionspec" in entry.params


def _matches(entry: MediaRange, media: Media) -> bool:
    if _names(entry, media):
        return True
    # Wildcards mean the JSON answers (never a stream nobody asked for by name).
    if entry.type == "*/*" or entry.type == "application/*":
        return media in (Media.JSON, Media.GRAPHQL_RESPONSE_JSON)
    return False


def negotiate(header: str | None, offered: tuple[Media, ...]) -> Media | None:
    """The one of ``offered`` the client prefers, or None (answer 406)."""
    if header is None or not header.strip():
        return Media.JSON if Media.JSON in offered else offered[0]
    ranges = parse_accept(header)
    # A type named with q=0 is refused, whatever a wildcard says.
    refused = {
        media for entry in ranges if entry.q == 0 for media in offered if _names(entry, media)
    }
    # A wildcard picks JSON first (what clients before the spec expect), then the spec's type.
    by_wildcard = sorted(offered, key=lambda media: media is not Media.JSON)
    best: Media | None = None
    best_q = 0.0
    for entry in ranges:
        if entry.q <= best_q:
            continue
        wildcard = entry.type in ("*/*", "application/*")
        for media in by_wildcard if wildcard else offered:
            if media not in refused and _matches(entry, media):
                best, best_q = media, entry.q
                break
    return best
