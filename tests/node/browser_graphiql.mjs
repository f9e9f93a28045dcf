// GraphiQL in a real browser: it renders from the app's own assets, runs the article-page tab and
// shows its data, and its subscription tab shows a comment posted over HTTP meanwhile.
//
// node browser_graphiql.mjs '{"origin": "http://127.0.0.1:PORT", "executablePath": "/usr/bin/chromium",
//   "screenshots": DIR, "token": BEARER_TOKEN, "articleId": ID, "body": COMMENT_BODY}'
// tests/browser/test_graphiql.py drives it.

import { launch, eventually } from "./browser.mjs";
import { options, post, run } from "./lib.mjs";

const opts = options("node browser_graphiql.mjs JSON");
const seen = { steps: [] };

async function responseText(page) {
  return page.evaluate(() => {
    const editor = document.querySelector(".result-window .CodeMirror");
    return editor && editor.CodeMirror ? editor.CodeMirror.getValue() : "";
  });
}

async function main() {
  const browser = await launch(opts);
  let page;
  try {
    page = await browser.newPage();
    // Frames the page's websocket sends and receives, to know when the subscription is live.
    const frames = [];
    page.on("websocket", (ws) => {
      ws.on("framesent", (frame) => frames.push({ sent: true, payload: String(frame.payload) }));
      ws.on("framereceived", (frame) => frames.push({ sent: false, payload: String(frame.payload) }));
    });

    await page.goto(`${opts.origin}/graphql`);
    await page.waitForSelector(".graphiql-container", { timeout: 15_000 });
    seen.notice = await page.locator(".agora-notice").count();
    seen.tabs = await page.locator(".graphiql-tab").allInnerTexts();
    seen.steps.push("rendered");

    // Tab 1: the article page.
    await page.click(".graphiql-execute-button");
    const article = await eventually(
      async () => {
        const text = await responseText(page);
        return text.includes('"title"') ? text : null;
      },
      { ms: 10_000, what: "the article-page result" },
    );
    seen.article = JSON.parse(article).data.article;
    seen.steps.push("queried");
    await page.screenshot({ path: `${opts.screenshots}/graphiql-article-page.png` });

    // The explorer plugin: the schema as a tree, the open query's fields ticked.
    await page.click('.graphiql-sidebar button[aria-label="Show GraphiQL Explorer"]');
    seen.explorer = await eventually(
      async () => {
        const text = await page.locator(".graphiql-plugin").innerText().catch(() => "");
        return text.includes("readingTimeMinutes") ? text.split("\n").slice(0, 3) : null;
      },
      { what: "the explorer's tree" },
    );
    await page.click('.graphiql-sidebar button[aria-label="Hide GraphiQL Explorer"]');

    // Tab 2: the live comment subscription.
    await page.locator(".graphiql-tab").nth(1).click();
    await eventually(
      () =>
        page.evaluate(() =>
          document.querySelector(".graphiql-query-editor .CodeMirror")
            .CodeMirror.getValue()
            .includes("subscription CommentAdded"),
        ),
      { what: "the subscription tab's query" },
    );
    await page.click(".graphiql-execute-button");
    await eventually(
      () =>
        frames.some((f) => f.sent && f.payload.includes('"subscribe"')) &&
        frames.some((f) => !f.sent && f.payload.includes('"connection_ack"')),
      { ms: 10_000, what: "the subscription to start" },
    );
    // The tab resumes after the article's last comment when the page opened: the comment
    // arrives whether it is posted before or after the server registers the subscription.
    const posted = await post(
      `${opts.origin}/graphql`,
      opts.token,
      "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) { comment { id sequence } errors { code } } }",
      { a: opts.articleId, b: opts.body },
    );
    seen.posted = posted.postComment;
    const live = await eventually(
      async () => {
        const text = await responseText(page);
        return text.includes(opts.body) ? text : null;
      },
      { ms: 5_000, what: "the posted comment in the subscription tab" },
    );
    seen.live = JSON.parse(live).data.commentAdded;
    seen.steps.push("subscribed");
    await page.screenshot({ path: `${opts.screenshots}/graphiql-subscription.png` });
    seen.blocked = browser.blocked;
    seen.problems = browser.problems;
    return seen;
  } catch (error) {
    seen.problems = browser.problems;
    if (page) await page.screenshot({ path: `${opts.screenshots}/graphiql-failure.png` });
    throw error;
  } finally {
    await browser.close();
  }
}

run(main, { totalMs: 60_000, report: () => seen });
