"""Comment bodies to safe HTML: markdown with raw HTML off, then an allow-list sanitiser.

markdown-it-py renders (``html=False`` escapes any HTML the user typed); nh3 (Ammonia) then
keeps only harmless tags and attributes, links only to absolute http(s)/mailto URLs, with
``rel="nofollow ugc noopener"``. Images are not rendered: a comment can't make readers' browsers
fetch a URL.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable(
    "image"
)

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


def render_markdown(body: str) -> str:
    """Sanitised HTML for a comment body."""
    html = _md.render(body)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow ugc noopener",
        # Relative URLs have no scheme to check: markdown-it percent-encodes a smuggled one
        # ("java%09script:") into what looks relative, and "//host" leaves the site.
        url_relative="deny",
        strip_comments=True,
    ).strip()
