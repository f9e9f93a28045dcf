// graphql-http's GraphQL-over-HTTP server audits against our /graphql.
//
// node graphql_http_audit.mjs '{"url": "http://127.0.0.1:PORT/graphql"}'
//
// Runs every audit of `serverAudits` (graphql-http, pinned in package.json) one after the other
// and prints one JSON line: {"results": [{id, name, status, reason?, response?}, ...]}, where
// `response` (for an audit that isn't ok) is the status, content-type and body the server gave.
// tests/http/test_graphql_http_audit.py drives it.

import { serverAudits } from "graphql-http";
import { options, run } from "./lib.mjs";

const { url } = options(`node graphql_http_audit.mjs '{"url": URL}'`);

async function describe(response) {
  if (!response || typeof response.status !== "number") return null;
  let body = null;
  try {
    body = (await response.clone().text()).slice(0, 500);
  } catch {
    // the audit read it already
  }
  return { status: response.status, contentType: response.headers.get("content-type"), body };
}

async function main() {
  const results = [];
  for (const audit of serverAudits({ url })) {
    const result = await audit.fn();
    const entry = { id: result.id, name: result.name, status: result.status };
    if (result.status !== "ok") {
      entry.reason = result.reason;
      entry.response = await describe(result.response);
    }
    results.push(entry);
  }
  return { results };
}

run(main, { totalMs: 30_000 });
