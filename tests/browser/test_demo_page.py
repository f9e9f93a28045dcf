"""The /demo page in headless Chromium, two visitors at once, every other host blocked: live
comments, replies, edits and deletions between them within a second, a comment count that stays
the API's exactly (a reply deeper than the first read as the newest comment, replies and
deletions in threads the page doesn't show), a quoted and confirmed purchase moving the other
page's odds, a refused sale with the API's message, the wallet, a dropped websocket that resumes
with afterSequence and shows what was posted, edited, deleted and traded meanwhile, a
subscription the server ends for falling behind that resumes, and one refused for good. The
values the pages show are checked against the API's own answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from demo.specs import CENTRAL_ASIA_SLUG
from tests.browser.conftest import SCREENSHOTS, Site
from tests.conftest import GraphQLClient

CLOSED_SLUG = "tariff-truce-nears-expiry-with-no-deal-in-sight"  # its market closed on 15 Nov
THREADS = """
query($slug: String!) {
  article(slug: $slug) {
    commentCount lastCommentSequence
    comments(first: 20) { nodes { id sequence body replyCount author { username }
      replies(first: 20) { nodes { id sequence body deleted editedAt parent { id }
        author { username }
        replies(first: 20) { nodes { id sequence replyCount } } } } } }
    markets { outcomes { id label probability } }
  }
}
"""
REPLY = """
mutation($a: ID!, $b: String!, $p: ID) {
  postComment(input: {articleId: $a, body: $b, parentId: $p}) {
    comment { id sequence } errors { code } } }
"""
STATUS = "query($slug: String!) { article(slug: $slug) { markets { status } } }"
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
    first = (await site.alice.data(THREADS, {"slug": CENTRAL_ASIA_SLUG}))["article"]
    levels3 = [
        r3
        for t in first["comments"]["nodes"]
        for r2 in t["replies"]["nodes"]
        for r3 in r2["replies"]["nodes"]
    ]
    # A reply to a reply: a reply to it is deeper than the page's first read reaches.
    third = levels3[0]
    # Another, which editor answers before the pages open: the newest comment of the article,
    # past the first read's three levels (the reviewer's double count).
    deepest_parent = levels3[1]
    assert deepest_parent["replyCount"] == 0
    editor = await GraphQLClient(site.http).log_in("editor")
    deepest = (
        await editor.data(
            REPLY,
            {"a": site.article["id"], "b": "Editor, four levels down", "p": deepest_parent["id"]},
        )
    )["postComment"]
    assert deepest["errors"] == []
    before = (await site.alice.data(THREADS, {"slug": CENTRAL_ASIA_SLUG}))["article"]
    assert before["lastCommentSequence"] == deepest["comment"]["sequence"]
    assert before["commentCount"] == site.article["commentCount"] + 1
    threads = before["comments"]["nodes"]
    # Bob's question, which already has replies: the new reply must come last in it.
    question = next(t for t in threads if t["author"]["username"] == "bob" and t["replyCount"])
    # Alice's reply in it: deleted over HTTP while B's websocket is down.
    alices = next(r for r in question["replies"]["nodes"] if r["author"]["username"] == "alice")
    no = next(o for o in before["markets"][0]["outcomes"] if o["label"] == "No")
    closed = (await site.alice.data(STATUS, {"slug": CLOSED_SLUG}))["article"]["markets"]
    assert [m["status"] for m in closed] == ["CLOSED"]
    bodies = {
        "comment": "Posted on page A, seen live on page B",
        "reply": "A reply from page A, in Bob's thread",
        "deep": "Bob, from page B, four levels down",
        "edit": "Edited on page A: the new wording shows on B",
        "unloaded": "Editor, five levels down, in a thread no page shows",
        "offline": "Posted over HTTP while B's websocket was down",
        "offlineEdit": "Edited over HTTP while B's websocket was down",
        "offlineReply": "Editor again, four levels down, while B's websocket was down",
        "overflow": "Posted after B's subscription overflowed",
        "draft": "Bob's reply, half written",
    }
    seen = await site.run(
        "browser_demo.mjs",
        token=site.alice.token,
        editorToken=editor.token,
        articleId=site.article["id"],
        replyTo=question["id"],
        deepReplyTo=third["id"],
        deepest={"id": deepest["comment"]["id"], "parentId": deepest_parent["id"]},
        offlineDelete=alices["id"],
        offlineOutcome=no["id"],
        bodies=bodies,
        amount="25",
        sellShares="100000",
        missingSlug="no-such-article-here",
        closedSlug=CLOSED_SLUG,
    )
    after = (await site.alice.data(THREADS, {"slug": CENTRAL_ASIA_SLUG}))["article"]
    assert seen["steps"] == [
        "logged in",
        "commented",
        "edited",
        "unloaded",
        "traded",
        "refused",
        "wallet",
        "resumed",
        "closed normally",
        "overflowed",
        "failed",
        "browsed",
    ]
    assert seen["blocked"] == []
    assert seen["problems"] == []
    # A normal close (1000): the page, not graphql-ws's own retry, reconnected, resuming after
    # the last comment it had, and caught up with the edit made meanwhile.
    assert seen["closedEdited"]["errors"] == []
    assert seen["closedResumedAfter"] == [seen["lastBeforeClose"]]

    # The article as served: title, meta line, trail, chips, tags, related news.
    assert seen["loading"] == "Loading comments..."
    assert seen["title"] == site.article["title"]
    assert seen["meta"].endswith(f" · 5 min read · {before['commentCount']} comments")
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
    # The newest comment, past the first read: counted once, behind its parent's "Show 1 reply",
    # anonymous and logged in.
    fresh = {
        "count": str(before["commentCount"]),
        "meta": f"{before['commentCount']} comments",
        "shown": 0,
        "more": "Show 1 reply",
    }
    assert seen["fresh"] == seen["freshLoggedIn"] == {"a": fresh, "b": fresh}

    # The comment and the replies reached the other page within a second, where they belong.
    assert seen["commentMs"] < 1000, seen["commentMs"]
    assert seen["replyMs"] < 1000, seen["replyMs"]
    assert seen["deepMs"] < 1000, seen["deepMs"]
    # (Edited on A, then over HTTP while B's websocket was down.)
    new = next(t for t in after["comments"]["nodes"] if t["body"] == bodies["offlineEdit"])
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
    # 15 + comment + reply + deeper reply - deleted reply.
    count = before["commentCount"] + 2
    assert seen["countAfterDelete"] == {"a": str(count), "b": str(count)}

    # A reply to `deepest` and its deletion, in a thread neither page shows: +1, then -1. (The
    # parent's "Show 1 reply" stays: commentUpdated doesn't say whose reply was deleted.)
    assert seen["unloadedReply"]["errors"] == [] and seen["deepestDeleted"]["errors"] == []
    assert seen["deepestDeleted"]["comment"]["deleted"] is True
    unloaded = {**fresh, "count": str(count), "meta": f"{count} comments"}
    assert seen["unloaded"] == {"a": unloaded, "b": unloaded, "shown": 0}

    # The purchase: quoted, confirmed, and B's odds moved to its probabilityAfter.
    buy = seen["buy"]
    assert buy["errors"] == []
    bought = percent(buy["trade"]["probabilityAfter"])
    assert seen["after"] == {"a": bought, "b": bought}
    assert seen["before"]["b"] != seen["after"]["b"]
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

    # The dropped websocket: B resubscribed after the last comment it had (editor's reply, in
    # no thread it shows), shows the comment posted meanwhile exactly once, the edit and the
    # deletion made meanwhile, and the odds after editor's trade; bob's open form stayed.
    offline = seen["offlinePosted"]
    assert offline["errors"] == []
    assert seen["offlineEdited"]["errors"] == [] and seen["offlineDeleted"]["errors"] == []
    assert seen["offlineTrade"]["errors"] == []
    assert seen["offlineShownWhileDown"] == 0
    assert seen["statusWhileDown"] == "Reconnecting…"
    assert seen["refusedConnections"] >= 1
    unloaded_sequence = seen["unloadedReply"]["comment"]["sequence"]
    assert unloaded_sequence == deep_on_a["sequence"] + 1
    [shown] = seen["offline"]
    assert shown["id"] == offline["comment"]["id"]
    assert shown["sequence"] == offline["comment"]["sequence"] == unloaded_sequence + 1
    assert seen["lastSeenBeforeDrop"] == unloaded_sequence
    # Editor's reply to the parent of `deepest` (deleted, so not in its replyCount): shown
    # once, last in the thread, and no "Show 1 reply" left.
    offline_reply = seen["offlineReply"]
    assert offline_reply["errors"] == []
    assert seen["offlineReplyShown"] == {
        "count": str(count + 1),
        "meta": f"{count + 1} comments",
        "shown": 0,
        "more": None,
        "replies": [
            {
                "id": offline_reply["comment"]["id"],
                "sequence": offline["comment"]["sequence"] + 1,
                "body": bodies["offlineReply"],
                "author": "Oliver Scott",
                "edited": False,
                "parentId": deepest_parent["id"],
                "lastInThread": True,
            }
        ],
    }
    assert seen["offlineEditShown"] == [
        {**comment_on_b, "body": bodies["offlineEdit"], "edited": True, "lastInThread": None}
    ]
    assert seen["draftKept"] == bodies["draft"]
    # - alice's reply deleted meanwhile + the comment and the reply posted meanwhile.
    assert seen["countAfterReconnect"] == str(count + 1)
    assert seen["percentAfterReconnect"] == percent(
        1 - seen["offlineTrade"]["trade"]["probabilityAfter"]
    )

    # The overflow: B resubscribed after the last comment it saw, and the next one came.
    last_offline = offline_reply["comment"]["sequence"]
    assert seen["lastSeenBeforeOverflow"] == last_offline
    assert seen["overflowResumedAfter"] == last_offline
    assert seen["overflowPosted"]["errors"] == []
    [overflow_shown] = seen["overflowShown"]
    assert overflow_shown["id"] == seen["overflowPosted"]["comment"]["id"]
    assert overflow_shown["sequence"] == last_offline + 1
    assert seen["overflowMs"] < 1000, seen["overflowMs"]
    assert seen["finalCount"] == str(after["commentCount"]) == str(count + 2)
    yes = next(o for o in after["markets"][0]["outcomes"] if o["label"] == "Yes")
    assert seen["finalPercent"] == percent(yes["probability"]) == seen["percentAfterReconnect"]

    # BAD_USER_INPUT: final, said so, and no reconnection.
    assert seen["failed"] == {
        "status": {
            "state": "failed",
            "text": "Live updates failed",
            "detail": "afterSequence must be a non-negative integer.",
        },
        "sockets": 0,
    }

    added = [s for s in seen["subscribes"] if s["operation"] == "CommentAdded"]
    # Socket 0: anonymous, from the first read; 1: bob's, from the same; 2: after the drop;
    # 3: after the normal close; 4: after the overflow.
    assert [(s["socket"], s["variables"]["afterSequence"]) for s in added] == [
        (0, before["lastCommentSequence"]),
        (1, before["lastCommentSequence"]),
        (2, unloaded_sequence),
        (3, last_offline),
        (4, last_offline),
    ]
    assert [i["authorized"] for i in seen["inits"]] == [False, True, True, True, True]
    for socket in (2, 3):
        operations = {s["operation"] for s in seen["subscribes"] if s["socket"] == socket}
        assert operations == {"CommentAdded", "CommentUpdated", "OddsUpdated"}

    # The anonymous visitor: "No such article"; a closed market, nothing to trade; the count;
    # the deeper reply behind "Show 1 reply"; a related article by its link; a phone.
    assert seen["missing"] == "No such article"
    [closed_market] = seen["closed"]
    assert closed_market["meta"] == "closed: trading has ended"
    assert "Log in to trade" not in closed_market["text"]
    assert seen["countOnC"] == str(after["commentCount"])
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
