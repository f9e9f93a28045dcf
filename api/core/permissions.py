"""The one permission layer: every resolver that needs access checks goes through here."""

from __future__ import annotations

from strawberry.types import Info

from accounts.roles import at_least
from api.core.errors import Forbidden, Unauthenticated
from db import models


def has_role(user: models.User | None, role: models.Role) -> bool:
    """Whether ``user`` holds ``role`` or a higher one."""
    return user is not None and at_least(user.role, role)


def require_viewer(info: Info) -> models.User:
    """The logged-in viewer; UNAUTHENTICATED otherwise."""
    viewer: models.User | None = info.context.viewer
    if viewer is None:
        raise Unauthenticated("Log in first: send `Authorization: Bearer <token>`.")
    return viewer


def require_role(info: Info, role: models.Role) -> models.User:
    """The viewer, if they hold ``role`` (or higher); UNAUTHENTICATED or FORBIDDEN otherwise."""
    viewer = require_viewer(info)
    if not has_role(viewer, role):
        raise Forbidden(f"This needs the {role.value} role.")
    return viewer


def require_self_or_admin(info: Info, user_id: int) -> models.User:
    """The viewer, if they are ``user_id`` or an admin."""
    viewer = require_viewer(info)
    if viewer.id != user_id and not has_role(viewer, models.Role.ADMIN):
        raise Forbidden("Only the account itself and admins can see this.")
    return viewer
