"""The news graph's inputs."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.news.types import ArticleStatus


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
        description=(
            "Full-text search over the title, excerpt and body, read as `search` reads its "
            "query (≤ 200 characters); most relevant first unless `orderBy` is given."
        ),
    )
    status: ArticleStatus | None = strawberry.field(
        default=None,
        description=(
            "Editors' view: articles in this status (AUTHOR and above; an author sees their "
            "own, moderators everyone's). Without it, what readers see: PUBLISHED ones."
        ),
    )


@strawberry.input(
    description="A new draft (AUTHOR and above): readers see nothing until it is published."
)
class CreateArticleInput:
    title: str = strawberry.field(
        description="The headline, 1–300 characters; the slug follows it."
    )
    category_slug: str = strawberry.field(description="The most specific category.")
    excerpt: str = strawberry.field(
        default="", description="A summary for lists, ≤ 1,000 characters."
    )
    body: str = strawberry.field(
        default="", description="Markdown (ARTICLE_BODY_MAX_LENGTH characters, 100,000 by default)."
    )
    tag_slugs: list[str] = strawberry.field(default_factory=list, description="Up to 20 tags.")
    market_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Up to 20 markets the article discusses."
    )
    featured: bool | None = strawberry.field(
        default=None, description="Feature it on the home page (MODERATOR and above only)."
    )


@strawberry.input(description="Changes to an article; fields left out stay as they are.")
class UpdateArticleInput:
    article_id: strawberry.ID = strawberry.field(description="The article.")
    title: str | None = strawberry.field(
        default=None,
        description="A new headline. The slug follows it until the article is first published.",
    )
    excerpt: str | None = strawberry.field(default=None, description="A new summary.")
    body: str | None = strawberry.field(default=None, description="A new Markdown body.")
    category_slug: str | None = strawberry.field(default=None, description="A new category.")
    tag_slugs: list[str] | None = strawberry.field(
        default=None, description="The whole new set of tags (up to 20)."
    )
    market_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The whole new set of markets (up to 20)."
    )
    featured: bool | None = strawberry.field(
        default=None, description="Feature it or not (MODERATOR and above only)."
    )
    slug: str | None = strawberry.field(
        default=None,
        description=(
            "A new URL name (lowercase letters, digits, hyphens). Once the article has been "
            "published its old slug keeps resolving to it."
        ),
    )


@strawberry.input(description="Publish an article now, or at a time.")
class PublishArticleInput:
    article_id: strawberry.ID = strawberry.field(description="The article.")
    publish_at: datetime | None = strawberry.field(
        default=None, description="A future time to go live at; now when left out."
    )


@strawberry.input(description="An article to take back to a draft, or to archive.")
class ArticleIdInput:
    article_id: strawberry.ID = strawberry.field(description="The article.")


@strawberry.input(description="The viewer's byline (made if they have none).")
class UpdateAuthorProfileInput:
    name: str | None = strawberry.field(default=None, description="The name in the byline.")
    bio: str | None = strawberry.field(default=None, description='A short biography; "" clears it.')
