"""The two HTML pages: GraphiQL (GET /graphql from a browser) and /demo, the reference client.

Both are templates in ``web/`` filled by ``app.assets``; their GraphQL operations are the files
of ``demo/operations/`` (the same ones the trusted-documents manifest holds), handed to the page
in its config so that a page never carries a second copy of a query.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from app.assets import WEB, Assets, not_found
from demo.specs import CENTRAL_ASIA_SLUG
from settings import Settings

if TYPE_CHECKING:
    from app.http import GraphQLApp

OPERATIONS = Path(__file__).resolve().parent.parent / "demo" / "operations"
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# The ids the GraphiQL tabs' variables need, read through the graph like any client would.
_TAB_IDS = """query GraphiQLTabs($slug: String!) {
  article(slug: $slug) { id lastCommentSequence markets { outcomes { id } } }
}"""
_NO_ARTICLE = "an article's id: articles { nodes { id } }"
_NO_OUTCOME = "an outcome's id: markets { nodes { outcomes { id label } } }"


def operations() -> dict[str, str]:
    """demo/operations/*.graphql by file name (which is the operation's name)."""
    return {
        path.stem: path.read_text(encoding="utf-8") for path in sorted(OPERATIONS.glob("*.graphql"))
    }


class Pages:
    """Renders GraphiQL and the demo page for one app."""

    def __init__(self, settings: Settings, assets: Assets, graphql: GraphQLApp) -> None:
        self.settings = settings
        self.assets = assets
        self.graphql = graphql
        self.operations = operations()

    async def graphiql(self, request: Request) -> Response:
        """GraphiQL with four tabs: the article page, live comments, logging in, a trade."""
        article_id, after, outcome_id = await self._demo_ids(request)
        ops = self.operations
        token_header = '{\n  "Authorization": "Bearer <the token from the LogIn tab>"\n}'
        tabs: list[dict[str, Any]] = [
            {
                # API.md's article-page query (the benchmarks' and the SQL-count test's), with
                # the body as a page shows it: rendered and sanitised.
                "query": ops["ArticlePage"].replace(
                    " body publishedAt", " bodyHtml publishedAt", 1
                ),
                "variables": _json({"slug": CENTRAL_ASIA_SLUG}),
            },
            {
                "query": "# Live: post a comment on the article (on /demo,\n"
                "# or with PostComment) and it appears here.\n"
                "# afterSequence is the article's last comment\n"
                "# when this page opened: nothing since is missed.\n" + ops["CommentAdded"],
                "variables": _json({"articleId": article_id, "afterSequence": after}),
            },
            {
                "query": "# Logging in gives a token: put it in the\n"
                '# Headers editor as {"Authorization": "Bearer <token>"}\n'
                "# (the next tab shows how).\n" + ops["LogIn"],
                "variables": _json({"username": "alice", "password": "demo-password"}),
            },
            {
                "query": ops["BuyShares"],
                "variables": _json({"outcomeId": outcome_id, "amount": "10.00"}),
                "headers": token_header,
            },
        ]
        config = {"url": "/graphql", "tabs": tabs}
        page = await self.assets.page(WEB / "graphiql.html", config, "GraphiQL · Agora")
        # The same address answers JSON to an Accept without text/html.
        page.headers["Vary"] = "Accept"
        return page

    async def demo(self, request: Request) -> Response:
        """GET /demo, /demo/<slug> (or /demo?slug=…): the article page, live."""
        if not self.settings.demo_page:
            return not_found("The demo page is off here (the DEMO_PAGE setting).")
        slug: str | None = request.path_params.get("slug") or request.query_params.get("slug")
        slug = slug or CENTRAL_ASIA_SLUG
        # No article has a malformed slug: the page says "No such article" (slug null), as it
        # does for a well-formed one that matches nothing, but with the status a 404 deserves.
        malformed = len(slug) > 200 or not SLUG.fullmatch(slug)
        config = {
            "url": "/graphql",
            "slug": None if malformed else slug,
            "operations": self.operations,
            # nodes(ids:) takes at most this many ids (the page's catch-up reads in batches).
            "maxNodeIds": self.settings.max_node_ids,
        }
        response = await self.assets.page(WEB / "demo" / "index.html", config, "Outpoll")
        if malformed:
            response.status_code = 404
        return response

    async def _demo_ids(self, request: Request) -> tuple[str, int | None, str]:
        """The demo article's id and last comment sequence and its first market's first
        outcome, for the tabs."""
        context = await self.graphql.get_context(request, Response())
        result = await self.graphql.schema.execute(
            _TAB_IDS, variable_values={"slug": CENTRAL_ASIA_SLUG}, context_value=context
        )
        article = (result.data or {}).get("article")
        if not article:
            return _NO_ARTICLE, None, _NO_OUTCOME
        markets = article["markets"]
        outcome = markets[0]["outcomes"][0]["id"] if markets else _NO_OUTCOME
        return article["id"], article["lastCommentSequence"], outcome


def _json(value: object) -> str:
    return json.dumps(value, indent=2)
