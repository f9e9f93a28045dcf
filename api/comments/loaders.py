"""The comments' loaders (comment pages go through the connection loaders of ``api.core``)."""

from __future__ import annotations

from api.core.dataloader import LoaderBase, by_field, lazy_loader
from db import models


class CommentLoaders(LoaderBase):
    """Loaders of comments; part of each request's ``api.loaders.Loaders``."""

    # One loader per relation, made on its first use in a request.
    comment_by_id = lazy_loader(by_field(models.Comment, "id"))
