"""Who outranks whom: the one order of the roles, for every access rule."""

from __future__ import annotations

from db.models import Role

# Each role may do everything the roles below it may.
RANK: dict[Role, int] = {
    Role.READER: 0,
    Role.AUTHOR: 1,
    Role.MODERATOR: 2,
    Role.ADMIN: 3,
}


def rank(role: Role | str) -> int:
    """The place of ``role`` in the order (a stored string is read as its role)."""
    return RANK[Role(role)]


def at_least(role: Role | str, needed: Role) -> bool:
    """Whether ``role`` is ``needed`` or a higher one."""
    return rank(role) >= RANK[needed]
