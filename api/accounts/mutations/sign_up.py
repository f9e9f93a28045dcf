"""``signUp``: a new reader account with the sign-up grant, logged in."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.accounts.inputs import SignUpInput
from api.accounts.payloads import AuthPayload, auth_error, auth_payload
from api.core.metadata import EXPENSIVE
from api.core.refusals import payload_of


@strawberry.mutation(
    metadata=EXPENSIVE, description="Create a reader account with 1000.00 credits; logs in."
)
async def sign_up(
    info: Info,
    input: Annotated[SignUpInput, strawberry.argument(description="What to do.")],
) -> AuthPayload:
    ctx = info.context

    async def run() -> AuthPayload:
        issued = await ctx.accounts.sign_up(
            input.username, input.password, input.display_name, ctx.client_address
        )
        return auth_payload(issued.token, issued.expires_at, issued.user)

    return await payload_of(run(), lambda payload: payload, auth_error)
