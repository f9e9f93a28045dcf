"""The per-request context: settings, the viewer, and a fresh set of DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from db import models
from resolvers.loaders import Loaders
from settings import Settings


@dataclass
class Context:
    """What every resolver can reach through ``info.context``."""

    settings: Settings
    loaders: Loaders = field(default_factory=Loaders)
    viewer: models.User | None = None
    request: Any = None
    response: Any = None
