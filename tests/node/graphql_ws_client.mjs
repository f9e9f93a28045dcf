// The reference graphql-ws client against our graphql-transport-ws server.
//
// node graphql_ws_client.mjs WS_URL TOKEN ARTICLE_ID MARKET_ID HTTP_URL [OUTCOME_ID] [COMMENT_BODY]
//
// Subscribes to commentAdded(ARTICLE_ID) and oddsUpdated(MARKET_ID) over the websocket, then over
// HTTP posts a comment and buys "5.00" of OUTCOME_ID (default: the market's first outcome), waits
// for both live messages, runs `query { stats { articleCount } }` over the websocket, disposes the
// client and prints one JSON line of what it received. Exit code 0 on success; 1 with a message on
// stderr on any error, unexpected close or timeout. tests/realtime/test_interop_graphql_ws.py drives it.

import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { deferred, withTimeout } from "./lib.mjs";

const LIVE_TIMEOUT_MS = 10_000;
const TOTAL_TIMEOUT_MS = 30_000;

const [wsUrl, token, articleId, marketId, httpUrl, outcomeArg, bodyArg] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`interop client: ${message}\n`);
  process.exit(1);
}

if (!wsUrl || !token || !articleId || !marketId || !httpUrl) {
  fail("usage: node graphql_ws_client.mjs WS_URL TOKEN ARTICLE_ID MARKET_ID HTTP_URL [OUTCOME_ID] [BODY]");
}

const watchdog = setTimeout(() => fail(`gave up after ${TOTAL_TIMEOUT_MS} ms`), TOTAL_TIMEOUT_MS);

async function http(query, variables) {
  const response = await fetch(httpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text}`);
  const body = JSON.parse(text);
  if (body.errors) throw new Error(`HTTP GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

function describeError(error) {
  if (Array.isArray(error)) return `GraphQL errors ${JSON.stringify(error)}`;
  if (error && typeof error === "object" && "code" in error && "reason" in error) {
    return `socket closed ${error.code} ${JSON.stringify(error.reason)}`;
  }
  return error instanceof Error ? error.message : String(error);
}

// What the client saw on the socket, for the report.
const trace = { connected: null, received: [], closed: null, pings: 0 };
let disposing = false;
const closedEarly = deferred(); // rejected if the socket closes or errs before we dispose
const socketClosed = deferred();

const client = createClient({
  url: wsUrl,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  lazy: false,
  retryAttempts: 0,
  onNonLazyError: (error) => closedEarly.reject(new Error(describeError(error))),
  on: {
    connected: (_socket, payload) => {
      trace.connected = { payload: payload ?? null };
    },
    message: (message) => {
      if (message.type === "ping") trace.pings += 1;
      else trace.received.push(message.id ? `${message.type}:${message.id}` : message.type);
    },
    closed: (event) => {
      trace.closed = { code: event?.code ?? null, reason: event?.reason ?? null };
      socketClosed.resolve();
      if (!disposing) closedEarly.reject(new Error(`socket closed early: ${describeError(event)}`));
    },
    error: (error) => closedEarly.reject(new Error(`socket error: ${describeError(error)}`)),
  },
});

/** Subscribe; `onData` gets every `data`; rejects `failed` on error or an early complete. */
function subscribe(name, query, variables, onData, failed) {
  return client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) failed.reject(new Error(`${name}: ${JSON.stringify(result.errors)}`));
        else onData(result.data);
      },
      error: (error) => failed.reject(new Error(`${name}: ${describeError(error)}`)),
      complete: () => {
        if (!disposing) failed.reject(new Error(`${name}: completed by the server`));
      },
    },
  );
}

async function main() {
  const outcomeId =
    outcomeArg ||
    (
      await http("query($id: ID!) { node(id: $id) { ... on Market { outcomes { id } } } }", {
        id: marketId,
      })
    ).node.outcomes[0].id;
  const body = bodyArg || `Interop check from the graphql-ws client, ${new Date().toISOString()}`;

  const failed = deferred(); // rejected if a subscription errs or completes
  const comment = deferred();
  const oddsFirst = deferred();
  const oddsLive = deferred();
  const odds = [];

  const stopComments = subscribe(
    "commentAdded",
    `subscription($articleId: ID!) {
       commentAdded(articleId: $articleId) { id sequence body author { username } }
     }`,
    { articleId },
    (data) => comment.resolve(data.commentAdded),
    failed,
  );
  const stopOdds = subscribe(
    "oddsUpdated",
    `subscription($marketId: ID!) {
       oddsUpdated(marketId: $marketId) {
         seq market { id } outcomes { id probability }
         lastTrade { amount shares outcome { id } user { username } }
       }
     }`,
    { marketId },
    (data) => {
      odds.push(data.oddsUpdated);
      if (odds.length === 1) oddsFirst.resolve(data.oddsUpdated);
      else oddsLive.resolve(data.oddsUpdated);
    },
    failed,
  );
  const race = (promise, what) =>
    withTimeout(
      Promise.race([promise, failed.promise, closedEarly.promise]),
      LIVE_TIMEOUT_MS,
      what,
    );

  // Both subscriptions are registered once the odds' first message is here (the server handles
  // a connection's messages in order), so neither live event can be missed.
  const first = await race(oddsFirst.promise, "the first oddsUpdated message");

  const posted = (
    await http(
      `mutation($input: PostCommentInput!) {
         postComment(input: $input) { comment { id sequence body } errors { code message } }
       }`,
      { input: { articleId, body } },
    )
  ).postComment;
  if (posted.errors.length) throw new Error(`postComment: ${JSON.stringify(posted.errors)}`);
  const bought = (
    await http(
      `mutation($input: BuySharesInput!) {
         buyShares(input: $input) { trade { id amount shares } errors { code message } }
       }`,
      { input: { outcomeId, amount: "5.00" } },
    )
  ).buyShares;
  if (bought.errors.length) throw new Error(`buyShares: ${JSON.stringify(bought.errors)}`);

  const [added, live] = await race(
    Promise.all([comment.promise, oddsLive.promise]),
    "the live commentAdded and oddsUpdated messages",
  );

  // A single-result operation over the same socket: the server answers next, then complete.
  const queryResults = [];
  const queryRun = (async () => {
    for await (const result of client.iterate({ query: "query { stats { articleCount } }" })) {
      queryResults.push(result);
    }
  })();
  await race(queryRun, "the query's next and complete");
  if (queryResults.length !== 1) {
    throw new Error(`the query gave ${queryResults.length} results: ${JSON.stringify(queryResults)}`);
  }

  disposing = true; // from here on, completes and the close are ours
  stopComments();
  stopOdds();
  await client.dispose();
  await withTimeout(socketClosed.promise, 5_000, "the socket to close after dispose");

  return {
    outcomeId,
    oddsFirst: first,
    oddsLive: live,
    oddsMessages: odds.length,
    comment: added,
    posted: posted.comment,
    trade: bought.trade,
    query: queryResults[0],
    trace,
  };
}

main().then(
  (result) => {
    clearTimeout(watchdog);
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  },
  (error) => {
    disposing = true;
    Promise.resolve(client.dispose()).catch(() => {});
    fail(`${error instanceof Error ? error.message : String(error)}\ntrace: ${JSON.stringify(trace)}`);
  },
);
