// What the browser scripts share: headless Debian Chromium driven by playwright-core, with every
// request to a host other than the app's blocked (and recorded), the pages' console errors and
// uncaught exceptions recorded, and screenshots saved where the test asks.

import { chromium } from "playwright-core";

// The flags this machine needs: no sandbox as root, and no background connections to Google's
// hosts (refused by the closed network, many at a time).
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/**
 * Launch Chromium for the app at `origin` (http://host:port). Returns { browser, newPage,
 * blocked, problems, close }: `newPage()` opens a page in a fresh context (its own storage, as
 * a second visitor); `blocked` lists every request that went elsewhere; `problems` every console
 * error and uncaught exception ("where: text").
 */
export async function launch({ origin, executablePath }) {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // playwright starts it with a new, empty profile of its own.
    args: FLAGS,
  });
  const blocked = [];
  const problems = [];
  const app = new URL(origin);
  let pages = 0;

  async function newPage() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.host === app.host || url.protocol === "data:" || url.protocol === "blob:") {
        return route.continue();
      }
      blocked.push(url.href);
      return route.abort("blockedbyclient");
    });
    const page = await context.newPage();
    const name = `page${++pages}`;
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`${name} console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`${name} exception: ${error.message}`));
    return page;
  }

  async function close() {
    await browser.close();
  }

  return { browser, newPage, blocked, problems, close };
}

/** Poll `probe` (async, returns a value or null/undefined/false) until it gives a value. */
export async function eventually(probe, { ms = 5_000, every = 50, what = "a condition" } = {}) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, every));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}
