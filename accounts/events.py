"""What the accounts tell the realtime layer: sessions that ended, by token hash only.

Tokens never leave the accounts package: the events carry what the database keeps of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain_events import Event


@dataclass(frozen=True)
class SessionRevoked(Event):
    """One session ended (log-out): connections opened with it close."""

    token_hash: str


@dataclass(frozen=True)
class SessionsRevoked(Event):
    """Every session of a user but one ended (a password change keeps the one in use)."""

    user_id: int
    keep_token_hash: str
