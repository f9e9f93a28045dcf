"""Every loader of one request (or one subscription event), each domain's gathered in one set.

``info.context.loaders.<thing>_by_<key>`` reaches any of them; a fresh set per request keeps
caches from leaking between viewers.
"""

from __future__ import annotations

from api.accounts.loaders import AccountLoaders
from api.comments.loaders import CommentLoaders
from api.markets.loaders import MarketLoaders
from api.news.loaders import NewsLoaders


class Loaders(NewsLoaders, CommentLoaders, MarketLoaders, AccountLoaders):
    """All loaders of one request: a fresh cache each time.

    ``max_objects`` bounds what one response may load (None: no bound, for subscription events,
    whose size the document limits already bound).
    """
