"""The per-request context: settings, services, the viewer, and a fresh set of DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accounts.service import Accounts
from api.loaders import Loaders
from comments.service import Comments
from db import models
from markets.trading import Trading
from settings import Settings


@dataclass
class Services:
    """Process-wide domain services, built once by the app's lifespan."""

    accounts: Accounts
    comments: Comments
    trading: Trading


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

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts

    @property
    def comments(self) -> Comments:
        return self.services.comments
