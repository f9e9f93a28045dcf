// The /demo page in a real browser, two visitors at once: alice on page A and bob on page B,
// both logged in through the page's form. The article's newest comment is a reply deeper than
// the page's first read reaches (`deepest`, by editor): both pages count it once and show it
// behind "Show 1 reply". A comment, a reply, an edit and a deletion made on A show on B live
// (all timed), bob's reply a level deeper on A; editor's reply to `deepest` (in no thread the
// pages show) and the deletion of `deepest` move both counts. A purchase on A (quoted, then
// confirmed) moves B's odds; bob's sale of shares he doesn't have shows the API's refusal;
// alice's wallet shows her position. B's websocket is then dropped (the page's socket runs
// through page.routeWebSocket, which records every frame and lets the script send its own),
// and while it is down a comment is posted, one edited and one deleted over HTTP, and editor
// trades and replies: the restored page shows all of it (the comment once, having resubscribed with
// afterSequence), with a reply form bob had open still there. An injected SUBSCRIPTION_OVERFLOW
// error makes B resubscribe after the last comment it saw; an injected BAD_USER_INPUT error
// stops its live updates for good. A third, anonymous visitor sees "No such article" for an
// unknown slug, a closed market without a trade form, opens the deeper thread with "Show 1
// reply", follows a related-news link, and the page at phone width.
//
// node browser_demo.mjs '{"origin": …, "executablePath": …, "screenshots": DIR, "token": ALICE_TOKEN,
//   "editorToken": TOKEN, "articleId": ID, "replyTo": COMMENT_ID, "deepReplyTo": COMMENT_ID (a
//   reply to a reply), "deepest": {"id", "parentId"} (editor's reply to another reply to a
//   reply), "offlineDelete": COMMENT_ID (alice's), "offlineOutcome": OUTCOME_ID (for editor),
//   "bodies": {"comment", "reply", "deep", "edit", "unloaded", "offline", "offlineEdit",
//   "offlineReply", "overflow", "draft"}, "amount": "25", "sellShares": "100000", "missingSlug": SLUG,
//   "closedSlug": SLUG (an article whose market is closed)}'
// tests/browser/test_demo_page.py drives it.

import { eventually, launch } from "./browser.mjs";
import { options, post, run } from "./lib.mjs";

const opts = options("node browser_demo.mjs JSON");
const seen = { steps: [], stepMs: [] };
const started = Date.now();
const step = (name) => {
  seen.steps.push(name);
  seen.stepMs.push(Date.now() - started);
};
const shot = (page, name, more = {}) =>
  page.screenshot({ path: `${opts.screenshots}/${name}`, ...more });

const POST = `mutation($a: ID!, $b: String!, $p: ID) {
  postComment(input: {articleId: $a, body: $b, parentId: $p}) {
    comment { id sequence } errors { code message } } }`;
const EDIT = `mutation($c: ID!, $b: String!) {
  editComment(input: {commentId: $c, body: $b}) { comment { id editedAt } errors { code } } }`;
const DELETE = `mutation($c: ID!) {
  deleteComment(input: {commentId: $c}) { comment { id deleted } errors { code } } }`;
const BUY = `mutation($o: ID!) {
  buyShares(input: {outcomeId: $o, amount: "10"}) { trade { probabilityAfter } errors { code } } }`;
const api = (query, variables, token = opts.token) =>
  post(`${opts.origin}/graphql`, token, query, variables);

/** The comments of `page` whose own body (not a reply's) reads `body`: id, sequence, thread. */
function comments(page, body) {
  return page.evaluate((body) => {
    return [...document.querySelectorAll("[data-testid=comment]")]
      .map((li) => {
        const row = li.querySelector(":scope > .comment-row");
        const parent = li.parentElement.closest("[data-testid=comment]");
        return {
          id: li.dataset.id,
          sequence: Number(li.dataset.sequence),
          body: row.querySelector("[data-testid=comment-body]").textContent.trim(),
          author: row.querySelector(".comment-author").textContent,
          edited: !row.querySelector(".comment-edited").hidden,
          parentId: parent ? parent.dataset.id : null,
          lastInThread: parent ? li === li.parentElement.lastElementChild : null,
        };
      })
      .filter((comment) => body === undefined || comment.body === body);
  }, body);
}

/** Resolves with the browser's Date.now() when `probe(arg)` first holds in `page`. */
async function whenShown(page, probe, arg) {
  const handle = await page.waitForFunction(probe, arg, { polling: "raf", timeout: 5_000 });
  return handle.jsonValue();
}
const hasBody = ({ id, body }) => {
  const found = [...document.querySelectorAll("[data-testid=comment]")].find(
    (li) => (!id || li.dataset.id === id) &&
      li.querySelector(":scope > .comment-row [data-testid=comment-body]").textContent.trim() === body,
  );
  return found ? Date.now() : false;
};

async function logIn(page, username) {
  await page.fill("[data-testid=login-form] [name=username]", username);
  await page.fill("[data-testid=login-form] [name=password]", "demo-password");
  await page.click("[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("#whoami:not([hidden])");
  await isLive(page);
  return page.textContent("[data-testid=me-name]");
}
const isLive = (page) =>
  page.waitForSelector("[data-testid=live-status][data-state=live]", { timeout: 10_000 });
const percentOf = (page, label) =>
  page.textContent(`[data-testid=market] li[data-label="${label}"] [data-testid=outcome-percent]`);
const commentCount = (page) => page.textContent("[data-testid=comment-count]");
const countIs = (page, count) =>
  page.waitForFunction(
    (count) => document.querySelector("[data-testid=comment-count]").textContent === count,
    String(count),
    { timeout: 5_000 },
  );
const status = (page) =>
  page.$eval("[data-testid=live-status]", (s) => ({ state: s.dataset.state, text: s.textContent,
    detail: s.title }));

/** What a page shows of `deepest`: the count, the reply itself, its parent's "Show" button. */
async function deepestOn(page) {
  const more = page.locator(`li[data-id="${opts.deepest.parentId}"] > .comment-row [data-action=more]`);
  return {
    count: await commentCount(page),
    meta: await page.textContent("#meta-comments"),
    shown: await page.locator(`li[data-id="${opts.deepest.id}"]`).count(),
    more: (await more.isHidden()) ? null : await more.textContent(),
  };
}

async function main() {
  const browser = await launch(opts);
  const pages = [];
  try {
    const a = await browser.newPage();
    const b = await browser.newPage();
    pages.push(a, b);

    // B's websocket goes through this proxy: its frames recorded, and it can be cut.
    const frames = [];
    const sockets = [];
    let serverUp = true;
    await b.routeWebSocket(/\/graphql$/, (ws) => {
      if (!serverUp) {
        frames.push({ socket: null, refused: true });
        return ws.close({ code: 1012, reason: "test: the server is away" });
      }
      const socket = sockets.length;
      const server = ws.connectToServer();
      sockets.push(ws);
      ws.onMessage((message) => {
        frames.push({ socket, sent: true, message: JSON.parse(message) });
        server.send(message);
      });
      server.onMessage((message) => {
        frames.push({ socket, sent: false, message: JSON.parse(message) });
        ws.send(message);
      });
    });

    await Promise.all([a.goto(`${opts.origin}/demo`), b.goto(`${opts.origin}/demo`)]);
    seen.loading = await a.textContent("#comments-loading");
    await Promise.all([isLive(a), isLive(b)]);
    await a.waitForTimeout(300); // time for a replay to come, were one wrongly asked for
    seen.fresh = { a: await deepestOn(a), b: await deepestOn(b) };
    seen.title = await a.textContent("[data-testid=title]");
    seen.meta = await a.textContent("[data-testid=meta]");
    seen.breadcrumb = await a.$$eval("#breadcrumb li", (items) => items.map((li) => li.textContent));
    seen.chips = await a.$$eval("#chips li", (items) => items.map((li) => li.textContent));
    seen.tags = await a.$$eval("#tags li", (items) => items.map((li) => li.textContent));
    seen.related = await a.$$eval("[data-testid=related] li", (items) =>
      items.map((li) => ({
        title: li.querySelector("a").textContent,
        href: li.querySelector("a").getAttribute("href"),
        meta: li.querySelector(".meta").textContent,
      })),
    );
    seen.initial = await comments(a);
    seen.names = [await logIn(a, "alice"), await logIn(b, "bob")];
    seen.freshLoggedIn = { a: await deepestOn(a), b: await deepestOn(b) };
    step("logged in");
    await shot(a, "demo-article.png", { fullPage: true });

    // A comment, then a reply in an existing thread, posted on A and timed until B shows them.
    const timed = async (body, act, id, page = b) => {
      const shown = whenShown(page, hasBody, { id, body });
      const start = Date.now();
      await act();
      return (await shown) - start;
    };
    /** On `page`, a comment's `action` (reply, edit, delete) through the form it opens under
     * the comment, `text` typed in if the form has a box; ms until `shown` (`{body, id}`)
     * appears on `on`. */
    const viaSlot = async (page, commentId, action, text, shown, on = b) => {
      const row = `li[data-id="${commentId}"] > .comment-row`;
      await page.click(`${row} [data-action=${action}]`);
      if (text !== null) await page.fill(`${row} .comment-slot textarea`, text);
      return timed(shown.body, () => page.click(`${row} .comment-slot button[type=submit]`),
        shown.id, on);
    };
    seen.commentMs = await timed(opts.bodies.comment, async () => {
      await a.fill("[data-testid=comment-form] textarea", opts.bodies.comment);
      await a.click("[data-testid=comment-form] button[type=submit]");
    });
    seen.replyMs = await viaSlot(a, opts.replyTo, "reply", opts.bodies.reply,
      { body: opts.bodies.reply });
    // Bob answers a reply to a reply on B: A shows it a level deeper than the page first loads.
    seen.deepMs = await viaSlot(b, opts.deepReplyTo, "reply", opts.bodies.deep,
      { body: opts.bodies.deep }, a);
    const mirrored = async (page) => ({
      comment: await comments(page, opts.bodies.comment),
      reply: await comments(page, opts.bodies.reply),
      deep: await comments(page, opts.bodies.deep),
    });
    seen.onA = await mirrored(a);
    seen.onB = await mirrored(b);
    step("commented");

    // An edit of the comment and the deletion of the reply, on A; B updates them in place.
    const [mine, reply] = [seen.onA.comment[0].id, seen.onA.reply[0].id];
    seen.editMs = await viaSlot(a, mine, "edit", opts.bodies.edit,
      { body: opts.bodies.edit, id: mine });
    seen.deleteMs = await viaSlot(a, reply, "delete", null, { body: "[deleted]", id: reply });
    seen.edited = (await comments(b)).filter((c) => c.id === seen.onA.comment[0].id);
    seen.deleted = (await comments(b)).filter((c) => c.id === seen.onA.reply[0].id);
    seen.countAfterDelete = { a: await commentCount(a), b: await commentCount(b) };
    step("edited");

    // Editor replies to `deepest`, then deletes it: in no thread either page shows, counted.
    const count = Number(seen.countAfterDelete.b);
    seen.unloadedReply = (
      await api(POST, { a: opts.articleId, b: opts.bodies.unloaded, p: opts.deepest.id },
        opts.editorToken)
    ).postComment;
    await Promise.all([countIs(a, count + 1), countIs(b, count + 1)]);
    seen.deepestDeleted = (await api(DELETE, { c: opts.deepest.id }, opts.editorToken)).deleteComment;
    await Promise.all([countIs(a, count), countIs(b, count)]);
    await b.waitForTimeout(100); // time for a second change, were one coming
    seen.unloaded = { a: await deepestOn(a), b: await deepestOn(b),
      shown: (await comments(b, opts.bodies.unloaded)).length };
    step("unloaded");

    // A buys: quote, confirm; B's odds move to the trade's probabilityAfter.
    seen.before = { a: await percentOf(a, "Yes"), b: await percentOf(b, "Yes") };
    const market = "[data-testid=market]";
    await a.selectOption(`${market} select[name=outcome]`, { label: "Yes" });
    await a.fill(`${market} [name=quantity]`, opts.amount);
    await a.click(`${market} [data-testid=trade-form] button[type=submit]`);
    await a.waitForSelector(`${market} [data-testid=quote]:not([hidden])`);
    seen.quote = await a.textContent(`${market} [data-testid=quote-text]`);
    const bought = a.waitForResponse(
      (response) => response.request().postDataJSON()?.operationName === "BuyShares",
    );
    const start = Date.now();
    await a.click(`${market} [data-testid=confirm]`);
    seen.buy = (await (await bought).json()).data.buyShares;
    const expected = `${(seen.buy.trade.probabilityAfter * 100).toFixed(1)}%`;
    const movedAt = await whenShown(
      b,
      ({ selector, expected }) => document.querySelector(selector)?.textContent === expected && Date.now(),
      { selector: `${market} li[data-label="Yes"] [data-testid=outcome-percent]`, expected },
    );
    seen.tradeMs = movedAt - start;
    seen.after = { a: await percentOf(a, "Yes"), b: await percentOf(b, "Yes") };
    seen.tradeMessage = await eventually(
      async () => (await a.textContent(`${market} [data-testid=trade-message]`)) || null,
      { what: "A's trade message" },
    );
    step("traded");

    // Bob sells far more than he holds: the quote is refused and the page says why.
    await b.check(`${market} input[name=side][value=sell]`);
    await b.fill(`${market} [name=quantity]`, opts.sellShares);
    await b.click(`${market} [data-testid=trade-form] button[type=submit]`);
    seen.refusal = await eventually(
      async () => (await b.textContent(`${market} [data-testid=trade-message]`)) || null,
      { what: "the refusal on B" },
    );
    seen.refusalIsError = await b.$eval(`${market} [data-testid=trade-message]`, (p) =>
      p.classList.contains("error"),
    );
    seen.refusalQuoteShown = await b.isVisible(`${market} [data-testid=quote]`);
    step("refused");

    // Alice's wallet: her balance and the position she just bought.
    await a.click("#nav-wallet");
    await a.waitForSelector("[data-testid=positions] tr");
    seen.wallet = {
      summary: await a.textContent("[data-testid=wallet-summary]"),
      rows: await a.$$eval("[data-testid=positions] tr", (rows) =>
        rows.map((row) => [...row.cells].map((cell) => cell.textContent)),
      ),
      holding: await a.textContent(`${market} [data-testid=holding]`),
    };
    await shot(a, "demo-wallet.png");
    step("wallet");

    // B's websocket drops, with a reply form open on B. While it is down a comment is posted,
    // alice's comment edited, another of hers deleted, and editor trades; the page catches up.
    const delivered = () =>
      frames
        .filter((f) => !f.sent && f.message?.type === "next" && f.message.payload.data?.commentAdded)
        .map((f) => f.message.payload.data.commentAdded.sequence);
    seen.lastSeenBeforeDrop = Math.max(...delivered());
    const draft = `li[data-id="${opts.replyTo}"] > .comment-row .comment-slot textarea`;
    await b.click(`li[data-id="${opts.replyTo}"] > .comment-row [data-action=reply]`);
    await b.fill(draft, opts.bodies.draft);
    serverUp = false;
    sockets[sockets.length - 1].close({ code: 1012, reason: "test: the server restarts" });
    await b.waitForSelector("[data-testid=live-status][data-state=reconnecting]");
    seen.statusWhileDown = await b.textContent("[data-testid=live-status]");
    seen.offlinePosted = (await api(POST, { a: opts.articleId, b: opts.bodies.offline })).postComment;
    const edited = seen.onA.comment[0].id;
    seen.offlineEdited = (await api(EDIT, { c: edited, b: opts.bodies.offlineEdit })).editComment;
    seen.offlineDeleted = (await api(DELETE, { c: opts.offlineDelete })).deleteComment;
    seen.offlineTrade = (await api(BUY, { o: opts.offlineOutcome }, opts.editorToken)).buyShares;
    seen.offlineReply = (
      await api(POST, { a: opts.articleId, b: opts.bodies.offlineReply, p: opts.deepest.parentId },
        opts.editorToken)
    ).postComment;
    await eventually(() => frames.some((frame) => frame.refused), { what: "a refused reconnection" });
    seen.offlineShownWhileDown = (await comments(b, opts.bodies.offline)).length;
    serverUp = true;
    await isLive(b);
    await whenShown(b, hasBody, { body: opts.bodies.offline });
    await whenShown(b, hasBody, { id: edited, body: opts.bodies.offlineEdit });
    await whenShown(b, hasBody, { id: opts.offlineDelete, body: "[deleted]" });
    await whenShown(b, hasBody, { body: opts.bodies.offlineReply });
    await b.waitForTimeout(300); // time for a duplicate to show, if one were coming
    seen.offline = await comments(b, opts.bodies.offline);
    seen.offlineEditShown = (await comments(b)).filter((c) => c.id === edited);
    seen.offlineReplyShown = { ...(await deepestOn(b)), replies: await comments(b, opts.bodies.offlineReply) };
    seen.draftKept = await b.inputValue(draft);
    seen.countAfterReconnect = await commentCount(b);
    seen.percentAfterReconnect = await percentOf(b, "Yes");
    step("resumed");

    // A normal close (1000, as a proxy's restart sends) with the server up: graphql-ws would
    // reconnect by itself, resubscribing with the afterSequence it began with and reading
    // nothing again; the page's own reconnection resumes after the last comment and catches up.
    const lastBeforeClose = Math.max(...delivered());
    const socketsBeforeClose = sockets.length;
    sockets.at(-1).close({ code: 1000, reason: "test: normal closure" });
    const closedEdit = `${opts.bodies.offlineEdit} (and again, after a normal close)`;
    seen.closedEdited = (await api(EDIT, { c: edited, b: closedEdit })).editComment;
    await eventually(
      () => frames.some((f) => f.sent && f.socket >= socketsBeforeClose &&
        f.message.payload?.operationName === "CommentAdded"),
      { ms: 12_000, what: "commentAdded subscribed again after the normal close" },
    );
    await whenShown(b, hasBody, { id: edited, body: closedEdit });
    seen.closedResumedAfter = frames
      .filter((f) => f.sent && f.socket >= socketsBeforeClose &&
        f.message.payload?.operationName === "CommentAdded")
      .map((f) => f.message.payload.variables.afterSequence);
    seen.lastBeforeClose = lastBeforeClose;
    // Back to the wording the later checks expect, live this time.
    await api(EDIT, { c: edited, b: opts.bodies.offlineEdit });
    await whenShown(b, hasBody, { id: edited, body: opts.bodies.offlineEdit });
    step("closed normally");

    // The server ends B's commentAdded with SUBSCRIPTION_OVERFLOW (injected here, as if B had
    // fallen behind): B reconnects and resumes after the last comment it saw.
    const lastAdded = () =>
      frames.filter((f) => f.sent && f.message.payload?.operationName === "CommentAdded").at(-1);
    const inject = (code, message) =>
      sockets.at(-1).send(JSON.stringify({ type: "error", id: lastAdded().message.id,
        payload: [{ message, extensions: { code, lastSequence: Math.max(...delivered()) } }] }));
    seen.lastSeenBeforeOverflow = Math.max(...delivered());
    const socketsBefore = sockets.length;
    inject("SUBSCRIPTION_OVERFLOW", "Subscription ended: the client fell behind.");
    await eventually(() => sockets.length > socketsBefore && lastAdded().socket === socketsBefore,
      { ms: 12_000, what: "commentAdded subscribed again" }); // after the backoff
    await isLive(b);
    seen.overflowResumedAfter = lastAdded().message.payload.variables.afterSequence;
    seen.overflowMs = await timed(opts.bodies.overflow, async () => {
      seen.overflowPosted = (await api(POST, { a: opts.articleId, b: opts.bodies.overflow })).postComment;
    });
    await b.waitForTimeout(200); // time for a duplicate to show, if one were coming
    seen.overflowShown = await comments(b, opts.bodies.overflow);
    seen.finalCount = await commentCount(b);
    seen.finalPercent = await percentOf(b, "Yes");
    await shot(b, "demo-live.png", { fullPage: true });
    step("overflowed");

    // A refusal that would come again (BAD_USER_INPUT): live updates fail, and no reconnection.
    const socketsNow = sockets.length;
    inject("BAD_USER_INPUT", "afterSequence must be a non-negative integer.");
    await b.waitForSelector("[data-testid=live-status][data-state=failed]");
    await b.waitForTimeout(1_000); // (a reconnection would say "Reconnecting…" at once)
    seen.failed = { status: await status(b), sockets: sockets.length - socketsNow };
    step("failed");
    seen.subscribes = frames
      .filter((frame) => frame.sent && frame.message.type === "subscribe")
      .map((frame) => ({
        socket: frame.socket,
        operation: frame.message.payload.operationName,
        variables: frame.message.payload.variables,
      }));
    seen.inits = frames
      .filter((frame) => frame.sent && frame.message.type === "connection_init")
      .map((frame) => ({ socket: frame.socket, authorized: Boolean(frame.message.payload?.authorization) }));
    seen.refusedConnections = frames.filter((frame) => frame.refused).length;

    // A third visitor, anonymous: an unknown slug; the thread now deeper than the page's first
    // read, opened with "Show 1 reply"; a related article, on a phone.
    const c = await browser.newPage();
    pages.push(c);
    await c.goto(`${opts.origin}/demo?slug=${opts.missingSlug}`);
    seen.missing = await (await c.waitForSelector("[data-testid=missing] h1")).textContent();
    await c.goto(`${opts.origin}/demo/${opts.closedSlug}`);
    await c.waitForSelector("[data-testid=market]");
    seen.closed = await c.$$eval("[data-testid=market]", (markets) =>
      markets.map((m) => ({ meta: m.querySelector(".market-meta").textContent, text: m.innerText })),
    );
    await c.goto(`${opts.origin}/demo`);
    await isLive(c);
    seen.countOnC = await commentCount(c);
    const more = c.locator(`li[data-id="${opts.deepReplyTo}"] > .comment-row [data-action=more]`);
    seen.more = { label: await more.textContent(), before: (await comments(c, opts.bodies.deep)).length };
    await more.click();
    await whenShown(c, hasBody, { body: opts.bodies.deep });
    seen.more.after = await comments(c, opts.bodies.deep);
    seen.more.hidden = await more.isHidden();
    const link = c.locator("[data-testid=related] a").first();
    seen.relatedClicked = await link.textContent();
    await link.click();
    await c.waitForFunction(
      (title) => document.querySelector("[data-testid=title]").textContent === title,
      seen.relatedClicked,
    );
    await isLive(c);
    seen.relatedPage = { path: new URL(c.url()).pathname, documentTitle: await c.title() };
    seen.anonymous = {
      loginForm: await c.isVisible("[data-testid=login-form]"),
      tradeForm: await c.isVisible("[data-testid=trade-form]"),
      commentForm: await c.isVisible("[data-testid=comment-form]"),
    };
    await c.setViewportSize({ width: 390, height: 844 });
    seen.narrowOverflow = await c.evaluate(() => document.documentElement.scrollWidth > innerWidth);
    await shot(c, "demo-narrow.png", { fullPage: true });
    step("browsed");

    seen.blocked = browser.blocked;
    seen.problems = browser.problems;
    return seen;
  } catch (error) {
    seen.problems = browser.problems;
    for (const [i, page] of pages.entries()) {
      await shot(page, `demo-failure-${i + 1}.png`, { fullPage: true }).catch(() => {});
    }
    throw error;
  } finally {
    await browser.close();
  }
}

run(main, { totalMs: 80_000, report: () => seen });
