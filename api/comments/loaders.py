"""The comments' loaders (comment pages go through the connection loaders of ``api.core``)."""

from __future__ import annotations

from api.core.dataloader import LoaderBase, by_field
from db import models


class CommentLoaders(LoaderBase):
    """Loaders of comments; part of each request's ``api.loaders.Loaders``."""

    def __init__(self, max_objects: int | None = None) -> None:
        super().__init__(max_objects)
        self.comment_by_id = self._loader(by_field(models.Comment, "id"))
