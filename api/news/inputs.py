"""The news graph's inputs."""

from __future__ import annotations

import strawberry


@strawberry.input(description="Narrows an article list; all given fields must match.")
class ArticleFilter:
    category_slug: str | None = strawberry.field(
        default=None, description="Articles in this category or any category inside it."
    )
    tag_slug: str | None = strawberry.field(default=None, description="Articles with this tag.")
    author_slug: str | None = strawberry.field(
        default=None, description="Articles with this byline."
    )
    featured: bool | None = strawberry.field(
        default=None, description="Only featured (true) or only other (false) articles."
    )
    search: str | None = strawberry.field(
        default=None,
        description="Words in the title, excerpt or body, case-insensitive (≤ 200 characters).",
    )
