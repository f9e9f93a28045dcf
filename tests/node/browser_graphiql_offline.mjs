// GraphiQL on a server without its assets, in a browser that can't reach the CDN either (every
// other host is blocked): the page says why instead of staying blank on "Loading…".
//
// node browser_graphiql_offline.mjs '{"origin": ..., "executablePath": ..., "screenshots": DIR}'
// tests/browser/test_graphiql.py drives it.

import { launch, eventually } from "./browser.mjs";
import { options, run } from "./lib.mjs";

const opts = options("node browser_graphiql_offline.mjs JSON");
const seen = {};

async function main() {
  const browser = await launch(opts);
  try {
    const page = await browser.newPage();
    await page.goto(`${opts.origin}/graphql`);
    seen.notice = await page.locator(".agora-notice").innerText();
    seen.message = await eventually(
      async () => {
        const text = await page.locator("#graphiql").innerText();
        return text.includes("could not load") ? text : null;
      },
      { ms: 10_000, what: "the page to say it could not load GraphiQL" },
    );
    await page.screenshot({ path: `${opts.screenshots}/graphiql-offline.png` });
    seen.blocked = [...new Set(browser.blocked)].sort();
    seen.problems = browser.problems;
    return seen;
  } finally {
    await browser.close();
  }
}

run(main, { totalMs: 30_000, report: () => seen });
