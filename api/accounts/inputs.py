"""The accounts' mutation inputs."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new reader account.")
class SignUpInput:
    username: str = strawberry.field(description="3–32 letters, digits or underscores.")
    password: str = strawberry.field(description="8–256 characters.")
    display_name: str = strawberry.field(description="The name shown beside comments.")


@strawberry.input(description="Credentials for a new session.")
class LogInInput:
    username: str = strawberry.field(description="The username (case-insensitive).")
    password: str = strawberry.field(description="The password.")


@strawberry.input(description="A new password for the viewer.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password now.")
    new_password: str = strawberry.field(description="The password from now on.")
