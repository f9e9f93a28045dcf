"""Article bodies to safe HTML: the comment pipeline (markdown with raw HTML off, then nh3's
allow-list), with images allowed and links that staff wrote followed.

What the comments allow stays allowed; articles add ``img`` (absolute http(s) sources only,
with ``alt`` and ``title``, loaded lazily, no referrer). Still no raw HTML, no
``style``, no event handlers, no relative or ``javascript:`` URLs.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

from comments.render import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

ARTICLE_TAGS = ALLOWED_TAGS | {"img"}
ARTICLE_ATTRIBUTES = {**ALLOWED_ATTRIBUTES, "img": {"src", "alt", "title"}}


def render_article(body: str) -> str:
    """Sanitised HTML for an article body (Markdown)."""
    html = _md.render(body)
    return nh3.clean(
        html,
        tags=ARTICLE_TAGS,
        attributes=ARTICLE_ATTRIBUTES,
        # Images load lazily and send no referrer; links leave with noopener.
        set_tag_attribute_values={"img": {"loading": "lazy", "referrerpolicy": "no-referrer"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        # As for comments: a relative URL has no scheme to check, and "//host" leaves the site.
        url_relative="deny",
        strip_comments=True,
    ).strip()
