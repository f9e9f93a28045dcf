// The reference GraphQL-over-SSE client (npm graphql-sse) in "distinct connections" mode.
//
// node graphql_sse_client.mjs '{"url": HTTP_URL, "token": TOKEN, "articleId": ID,
//   "afterSequence": N, "marketId": ID, "outcomeId": ID, "body": TEXT}'
//
// With graphql-sse's createClient (singleConnection: false, so one streamed POST per operation,
// no retries) subscribes to commentAdded(articleId, afterSequence) and oddsUpdated(marketId);
// once the odds' first message is in and the comments' stream is open, posts a comment and buys
// "5.00" of outcomeId with plain fetches (as the logged-in user of TOKEN), waits for both live
// messages, runs a query over SSE (one `next`, then `complete`) and a subscription that doesn't
// validate (its errors in one `next`, then `complete`), unsubscribes, disposes the
// client and prints one JSON line: what each operation received, the mutations' results and
// every request the client made as recordingFetch saw it (headers, status, the raw stream).
// tests/http/test_http_clients.py drives it.

import { createClient } from "graphql-sse";
import { deferred, options, post, recordingFetch, run, withTimeout } from "./lib.mjs";

const LIVE_TIMEOUT_MS = 10_000;

const opts = options(
  `node graphql_sse_client.mjs '{"url", "token", "articleId", "afterSequence", "marketId", "outcomeId", "body"}'`,
);

const requests = [];
const events = {}; // operation name → the SSE events graphql-sse handed it
let client;
let disposing = false;

function describeError(error) {
  if (Array.isArray(error)) return `GraphQL errors ${JSON.stringify(error)}`;
  if (error && typeof error === "object" && "response" in error && error.response) {
    return `${error.message}: HTTP ${error.response.status}`;
  }
  if (error && typeof error.status === "number") return `HTTP ${error.status} ${error.statusText}`;
  return error instanceof Error ? error.message : String(error);
}

/** Subscribe; `onData` gets every `data`; `failed` is rejected on an error or an early end. */
function subscribe(name, query, variables, onData, failed, connected) {
  events[name] = [];
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
    {
      connected: () => connected?.resolve(),
      message: (message) => events[name].push(message.event),
    },
  );
}

async function main() {
  client = createClient({
    url: opts.url,
    singleConnection: false,
    retryAttempts: 0,
    fetchFn: recordingFetch(requests),
  });

  const failed = deferred(); // rejected if a subscription errs or ends
  const commentsOpen = deferred();
  const comment = deferred();
  const oddsFirst = deferred();
  const oddsLive = deferred();
  const comments = [];
  const odds = [];

  const stopComments = subscribe(
    "commentAdded",
    `subscription CommentAdded($articleId: ID!, $afterSequence: Int) {
       commentAdded(articleId: $articleId, afterSequence: $afterSequence) {
         id sequence body author { username }
       }
     }`,
    { articleId: opts.articleId, afterSequence: opts.afterSequence },
    (data) => {
      comments.push(data.commentAdded);
      comment.resolve(data.commentAdded);
    },
    failed,
    commentsOpen,
  );
  const stopOdds = subscribe(
    "oddsUpdated",
    `subscription OddsUpdated($marketId: ID!) {
       oddsUpdated(marketId: $marketId) {
         seq market { id } outcomes { id probability }
         lastTrade { amount shares outcome { id } user { username } }
       }
     }`,
    { marketId: opts.marketId },
    (data) => {
      odds.push(data.oddsUpdated);
      if (odds.length === 1) oddsFirst.resolve(data.oddsUpdated);
      else oddsLive.resolve(data.oddsUpdated);
    },
    failed,
  );
  const race = (promise, what) =>
    withTimeout(Promise.race([promise, failed.promise]), LIVE_TIMEOUT_MS, what);

  // The odds' first message means that subscription is live; the comment posted next is sent
  // to the comments' stream live, or (had that one not subscribed yet) replayed after
  // afterSequence: either way exactly once.
  const first = await race(oddsFirst.promise, "the first oddsUpdated message");
  await race(commentsOpen.promise, "the commentAdded stream's response");

  const posted = (
    await post(
      opts.url,
      opts.token,
      `mutation($input: PostCommentInput!) {
         postComment(input: $input) { comment { id sequence body } errors { code message } }
       }`,
      { input: { articleId: opts.articleId, body: opts.body } },
    )
  ).postComment;
  if (posted.errors.length) throw new Error(`postComment: ${JSON.stringify(posted.errors)}`);
  const bought = (
    await post(
      opts.url,
      opts.token,
      `mutation($input: BuySharesInput!) {
         buyShares(input: $input) { trade { id amount shares } errors { code message } }
       }`,
      { input: { outcomeId: opts.outcomeId, amount: "5.00" } },
    )
  ).buyShares;
  if (bought.errors.length) throw new Error(`buyShares: ${JSON.stringify(bought.errors)}`);

  const [, live] = await race(
    Promise.all([comment.promise, oddsLive.promise]),
    "the live commentAdded and oddsUpdated messages",
  );
  // A moment for a duplicate, if the server were to send one.
  await new Promise((resolve) => setTimeout(resolve, 200));

  // A single-result operation over SSE: one `next`, then `complete`.
  const queryResults = [];
  events.query = [];
  const queryRun = (async () => {
    for await (const result of client.iterate(
      { query: "query Stats { stats { articleCount } }" },
      { message: (message) => events.query.push(message.event) },
    )) {
      queryResults.push(result);
    }
  })();
  await race(queryRun, "the query's next and complete");

  // A document that doesn't validate: the protocol has the errors come in a `next` event of an
  // accepted stream (not as a 400, which would leave an EventSource with nothing to show).
  const invalidResults = [];
  events.invalid = [];
  const invalidRun = (async () => {
    for await (const result of client.iterate(
      { query: "subscription Invalid { commentAdded(articleId: 1) { noSuchField } }" },
      { message: (message) => events.invalid.push(message.event) },
    )) {
      invalidResults.push(result);
    }
  })();
  await race(invalidRun, "the invalid subscription's next and complete");

  disposing = true; // from here on, completes are ours
  stopComments();
  stopOdds();
  client.dispose();

  return {
    comments,
    oddsFirst: first,
    oddsLive: live,
    oddsMessages: odds.length,
    posted: posted.comment,
    trade: bought.trade,
    query: queryResults,
    invalid: invalidResults,
    events,
    requests,
  };
}

run(main, {
  onError: () => {
    disposing = true;
    client?.dispose();
  },
  report: () => ({ events, requests }),
});
