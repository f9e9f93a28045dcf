"""``logIn``: a new session for a username and password."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.accounts.inputs import LogInInput
from api.accounts.payloads import AuthPayload, auth_error, auth_payload
from api.core.metadata import EXPENSIVE
from api.core.refusals import payload_of


@strawberry.mutation(
    metadata=EXPENSIVE, description="A new session token for a username and password."
)
async def log_in(
    info: Info,
    input: Annotated[LogInInput, strawberry.argument(description="What to do.")],
) -> AuthPayload:
    ctx = info.context

    async def run() -> AuthPayload:
        issued = await ctx.accounts.log_in(input.username, input.password, ctx.client_address)
        return auth_payload(issued.token, issued.expires_at, issued.user)

    return await payload_of(run(), lambda payload: payload, auth_error)
