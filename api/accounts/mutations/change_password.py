"""``changePassword``: a new password; the viewer's other sessions end."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.accounts.inputs import ChangePasswordInput
from api.accounts.payloads import AuthPayload, auth_error, auth_payload
from api.core.metadata import EXPENSIVE
from api.core.permissions import require_viewer
from api.core.refusals import payload_of


@strawberry.mutation(
    metadata=EXPENSIVE, description="Change the viewer's password; ends their other sessions."
)
async def change_password(
    info: Info,
    input: Annotated[ChangePasswordInput, strawberry.argument(description="What to do.")],
) -> AuthPayload:
    viewer = require_viewer(info)
    ctx = info.context

    async def run() -> AuthPayload:
        expires = await ctx.accounts.change_password(
            viewer, ctx.token, input.current_password, input.new_password
        )
        return auth_payload(ctx.token, expires, viewer)

    return await payload_of(run(), lambda payload: payload, auth_error)
