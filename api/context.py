"""The per-request context: settings, services, the viewer, and a fresh set of DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accounts.service import Accounts
from api.loaders import Loaders
from comments.service import Comments
from db import models
from markets.trading import Trading
from news.service import Newsroom
from realtime.sharing import ViewerUnreachable
from settings import Settings


@dataclass
class Services:
    """Process-wide domain services, built once by the app's lifespan."""

    accounts: Accounts
    comments: Comments
    trading: Trading
    newsroom: Newsroom


@dataclass
class Context:
    """What every resolver can reach through ``info.context``."""

    settings: Settings
    services: Services
    loaders: Loaders = field(default_factory=Loaders)
    viewer: models.User | None = None
    token: str = ""
    client_address: str = "unknown"
    request: Any = None
    response: Any = None
    # "query", "mutation" or "subscription", once the document's checks have chosen it.
    operation_type: str = ""
    # Whether the transport ran the request's checks before execution (the HTTP view does).
    prechecked: bool = False
    # The planned executor's estimate of the response's JSON size, counted as it built the
    # data (api.core.execution): the HTTP view's bound then needs no walk of its own.
    response_size: int | None = None

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts

    @property
    def comments(self) -> Comments:
        return self.services.comments


class SharedContext(Context):
    """The context of an execution shared by many viewers (a subscription group's): there is no
    one viewer, so reading ``viewer`` raises ``ViewerUnreachable``. A field whose value depends
    on the viewer declares it (``api.core.viewer.VIEWER``) and is then executed per viewer."""

    @property
    def viewer(self) -> models.User | None:
        """Unreachable: raises ViewerUnreachable."""
        raise ViewerUnreachable(
            "The viewer was read in an execution shared between viewers: declare the field "
            "viewer-dependent (metadata=VIEWER, api.core.viewer) so it runs per viewer."
        )

    @viewer.setter
    def viewer(self, value: models.User | None) -> None:
        # Context's __init__ stores its default here: nothing else may be stored.
        if value is not None:
            raise ValueError("a shared context has no viewer")

    def __repr__(self) -> str:
        return f"SharedContext(viewer=<unreachable>, loaders={self.loaders!r})"
