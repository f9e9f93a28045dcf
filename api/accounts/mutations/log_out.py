"""``logOut``: revoke the token in use."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.core.permissions import require_viewer


@strawberry.mutation(
    description="Revoke the token in use, at once, for HTTP and websockets opened with it."
)
async def log_out(info: Info) -> bool:
    require_viewer(info)
    return await info.context.accounts.log_out(info.context.token)
