"""The /demo page in headless Chromium, two visitors at once, every other host blocked: live
comments, replies, edits and deletions between them within a second, a quoted and confirmed
purchase moving the other page's odds, a refused sale with the API's message, the wallet, and
a dropped websocket that resumes with afterSequence and loses or repeats nothing. The values the
pages show are checked against the API's own answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from demo.specs import CENTRAL_ASIA_SLUG
from tests.browser.conftest import SCREENSHOTS, Site

THREADS = """
query($slug: String!) {
  article(slug: $slug) {
    commentCount
    comments(first: 20) { nodes { id sequence body replyCount author { username }
      replies(first: 20) { nodes { id sequence body deleted editedAt parent { id }
        replies(first: 20) { nodes { id sequence } } } } } }
    markets { outcomes { label probability } }
  }
}
"""
QUOTE = """
query($outcomeId: ID!, $shares: Decimal) {
  quote(input: {outcomeId: $outcomeId, shares: $shares}) { shares }
}
"""
WALLET = "{ me { balance positions { nodes { shares outcome { label } } } } }"


def walk(comments: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every comment of these threads, replies after their parent."""
    for comment in comments:
        yield comment
        yield from walk(comment.get("replies", {"nodes": []})["nodes"])


def percent(probability: float) -> str:
    """A probability as the page shows it."""
    return f"{probability * 100:.1f}%"


async def test_two_visitors_see_each_other_live(site: Site) -> None:
    before = (await site.alice.data(THREADS, {"slug": CENTRAL_ASIA_SLUG}))["article"]
    threads = before["comments"]["nodes"]
    # Bob's question, which already has replies: the new reply must come last in it.
    question = next(t for t in threads if t["author"]["username"] == "bob" and t["replyCount"])
    # A reply to a reply: a reply to it is deeper than the page's first read reaches.
    third = next(
        r3 for t in threads for r2 in t["replies"]["nodes"] for r3 in r2["replies"]["nodes"]
    )
    bodies = {
        "comment": "Posted on page A, seen live on page B",
        "reply": "A reply from page A, in Bob's thread",
        "deep": "Bob, from page B, four levels down",
        "edit": "Edited on page A: the new wording shows on B",
        "offline": "Posted over HTTP while B's websocket was down",
    }
    seen = await site.run(
        "browser_demo.mjs",
        token=site.alice.token,
        articleId=site.article["id"],
        replyTo=question["id"],
        deepReplyTo=third["id"],
        bodies=bodies,
        amount="25",
        sellShares="100000",
        missingSlug="no-such-article-here",
    )
    after = (await site.alice.data(THREADS, {"slug": CENTRAL_ASIA_SLUG}))["article"]
    assert seen["steps"] == [
        "logged in",
        "commented",
        "edited",
        "traded",
        "refused",
        "wallet",
        "resumed",
        "browsed",
    ]
    assert seen["blocked"] == []
    assert seen["problems"] == []

    # The article as served: title, meta line, trail, chips, tags, related news.
    assert seen["loading"] == "Loading comments..."
    assert seen["title"] == site.article["title"]
    assert seen["meta"].endswith(f" · 5 min read · {site.article['commentCount']} comments")
    assert seen["breadcrumb"] == ["News", "Diplomacy", site.article["title"]]
    assert seen["chips"] == ["Politics", "Diplomacy", "Bilateral Relations"]
    assert "#central-asia" in seen["tags"] and "#azerbaijan" in seen["tags"]
    assert len(seen["related"]) == 5
    assert all(r["href"].startswith("/demo/") and " ago · " in r["meta"] for r in seen["related"])
    # The threads as loaded: every comment and reply of the API's answer, once.
    loaded = {c["id"]: c for c in seen["initial"]}
    expected = {c["id"]: c for c in walk(threads)}
    assert loaded.keys() == expected.keys()
    assert all(loaded[i]["sequence"] == expected[i]["sequence"] for i in expected)
    assert seen["names"] == ["Alice Martin", "Bob Okafor"]

    # The comment and the replies reached the other page within a second, where they belong.
    assert seen["commentMs"] < 1000, seen["commentMs"]
    assert seen["replyMs"] < 1000, seen["replyMs"]
    assert seen["deepMs"] < 1000, seen["deepMs"]
    new = next(t for t in after["comments"]["nodes"] if t["body"] == bodies["edit"])
    [comment_on_b] = seen["onB"]["comment"]
    assert comment_on_b["id"] == new["id"] and comment_on_b["sequence"] == new["sequence"]
    assert comment_on_b["parentId"] is None and comment_on_b["author"] == "Alice Martin"
    [reply_on_b] = seen["onB"]["reply"]
    replies = next(t for t in after["comments"]["nodes"] if t["id"] == question["id"])
    reply = replies["replies"]["nodes"][-1]
    assert reply_on_b["id"] == reply["id"] and reply_on_b["sequence"] == reply["sequence"]
    assert reply_on_b["parentId"] == question["id"] and reply_on_b["lastInThread"]
    assert seen["onA"]["comment"][0]["id"] == new["id"]  # A shows its own comment once too
    assert len(seen["onA"]["reply"]) == 1
    [deep_on_a] = seen["onA"]["deep"]
    [deep_on_b] = seen["onB"]["deep"]
    assert deep_on_a == deep_on_b
    assert deep_on_a["parentId"] == third["id"] and deep_on_a["author"] == "Bob Okafor"
    assert deep_on_a["sequence"] == reply["sequence"] + 1

    # The edit and the deletion updated B in place.
    assert seen["edited"] == [
        {**comment_on_b, "body": bodies["edit"], "edited": True, "lastInThread": None}
    ]
    assert reply["deleted"] and seen["deleted"][0]["body"] == "[deleted]"
    assert seen["editMs"] < 2000 and seen["deleteMs"] < 2000
    # 14 + comment + reply + deeper reply - deleted reply.
    count = site.article["commentCount"] + 2
    assert seen["countAfterDelete"] == {"a": str(count), "b": str(count)}

    # The purchase: quoted, confirmed, and B's odds moved to its probabilityAfter.
    buy = seen["buy"]
    assert buy["errors"] == []
    yes = next(o for o in after["markets"][0]["outcomes"] if o["label"] == "Yes")
    assert buy["trade"]["probabilityAfter"] == yes["probability"]
    assert seen["after"] == {"a": percent(yes["probability"]), "b": percent(yes["probability"])}
    assert seen["before"]["b"] != seen["after"]["b"]
    assert seen["finalPercent"] == percent(yes["probability"])
    assert seen["quote"].startswith(f"Buy {buy['trade']['shares']} shares of Yes for 25.00 credits")
    assert seen["tradeMessage"] == (
        f"Bought {buy['trade']['shares']} shares for 25.00 credits. Balance: {buy['balance']}."
    )
    assert seen["tradeMs"] < 2000, seen["tradeMs"]

    # The refused sale shows the API's own message.
    outcome_id = site.market["outcomes"][0]["id"]
    refused = await site.bob.post(QUOTE, {"outcomeId": outcome_id, "shares": "100000"})
    assert refused["errors"][0]["extensions"]["code"] == "INSUFFICIENT_SHARES"
    assert seen["refusal"] == refused["errors"][0]["message"] == "You hold fewer shares than that."
    assert seen["refusalIsError"] and not seen["refusalQuoteShown"]

    # The wallet: alice's balance and positions as the API has them.
    wallet: dict[str, Any] = (await site.alice.data(WALLET))["me"]
    assert wallet["balance"] == buy["balance"]
    assert seen["wallet"]["summary"].startswith(f"Balance: {wallet['balance']} credits")
    rows = seen["wallet"]["rows"]
    assert len(rows) == len(wallet["positions"]["nodes"])
    assert [r[2] for r in rows] == [p["shares"] for p in wallet["positions"]["nodes"]]
    assert seen["wallet"]["holding"].startswith("You hold ")

    # The dropped websocket: B resubscribed after the last comment it had, and shows the
    # comment posted meanwhile exactly once.
    offline = seen["offlinePosted"]
    assert offline["errors"] == []
    assert seen["offlineShownWhileDown"] == 0
    assert seen["statusWhileDown"] == "Reconnecting…"
    assert seen["refusedConnections"] >= 1
    [shown] = seen["offline"]
    assert shown["id"] == offline["comment"]["id"]
    assert shown["sequence"] == offline["comment"]["sequence"] == deep_on_a["sequence"] + 1
    assert seen["lastSeenBeforeDrop"] == deep_on_a["sequence"]
    added = [s for s in seen["subscribes"] if s["operation"] == "CommentAdded"]
    first_top_level = max(t["sequence"] for t in threads)
    # Socket 0: anonymous, from the first read; 1: bob's, from the same; 2: after the drop.
    assert [s["variables"]["afterSequence"] for s in added] == [
        first_top_level,
        first_top_level,
        deep_on_a["sequence"],
    ]
    assert [s["socket"] for s in added] == [0, 1, 2]
    assert [i["authorized"] for i in seen["inits"]] == [False, True, True]
    operations = {s["operation"] for s in seen["subscribes"] if s["socket"] == 2}
    assert operations == {"CommentAdded", "CommentUpdated", "OddsUpdated"}
    assert seen["finalCount"] == str(after["commentCount"]) == str(count + 1)

    # The anonymous visitor: "No such article"; the deeper reply behind "Show 1 reply"; a
    # related article by its link; a phone.
    assert seen["missing"] == "No such article"
    assert seen["more"] == {
        "label": "Show 1 reply",
        "before": 0,
        "after": [{**deep_on_a, "lastInThread": True}],
        "hidden": True,
    }
    related = seen["related"][0]
    assert seen["relatedClicked"] == related["title"]
    assert seen["relatedPage"]["path"] == related["href"]
    assert seen["relatedPage"]["documentTitle"] == f"{related['title']} · Outpoll"
    assert seen["anonymous"] == {"loginForm": True, "tradeForm": False, "commentForm": False}
    assert seen["narrowOverflow"] is False

    for name in ("demo-article.png", "demo-live.png", "demo-wallet.png", "demo-narrow.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
