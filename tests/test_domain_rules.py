"""The business rules that live once in the domain: roles, the clock, and (below) pricing."""

from __future__ import annotations

from datetime import UTC

import pytest

import clock
from accounts.roles import at_least, rank
from db.models import Role


def test_the_clock_is_aware_utc() -> None:
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize("needed", list(Role))
def test_a_role_is_at_least_itself_and_everything_below(needed: Role) -> None:
    for role in Role:
        assert at_least(role, needed) == (rank(role) >= rank(needed))
    # Stored roles come back as plain strings on some paths.
    assert at_least(needed.value, needed)


def test_roles_rank_reader_author_moderator_admin() -> None:
    order = [Role.READER, Role.AUTHOR, Role.MODERATOR, Role.ADMIN]
    assert sorted(Role, key=rank) == order
    assert at_least(Role.ADMIN, Role.MODERATOR) and not at_least(Role.AUTHOR, Role.MODERATOR)
