// Apollo Client 4 (npm @apollo/client) over HTTP: multipart subscriptions, persisted queries,
// batching.
//
// node apollo_client.mjs '{"mode": MODE, "url": HTTP_URL, ...}'
//
// Every request goes through recordingFetch, and the output's `requests` is what it saw
// (method, URL parameters, accept and content-type, body; status, content-type and body of the
// response, the raw text of a streamed one). Modes:
//
// "multipart" {token, articleId, afterSequence, marketId, outcomeId, body}: HttpLink (which
//   speaks Apollo's multipart subscription protocol itself) subscribes to
//   commentAdded(articleId, afterSequence) and oddsUpdated(marketId); once the odds' first
//   message is in, posts a comment and buys "5.00" of outcomeId with client.mutate (as the
//   logged-in user of TOKEN, through the same link), waits for both live messages, unsubscribes.
// "persisted" {slug, useGET}: PersistedQueryLink (sha256 from node:crypto, and
//   useGETForHashedQueries: useGET) before HttpLink; runs the article-page query for slug twice
//   (no cache), with an operation name of its own per useGET so that each starts unknown.
// "batch" {slug}: BatchHttpLink; four queries at once, which it sends as one array request.
//
// tests/http/test_http_clients.py drives it.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { BatchHttpLink } from "@apollo/client/link/batch-http";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { deferred, options, recordingFetch, run, withTimeout } from "./lib.mjs";

const LIVE_TIMEOUT_MS = 10_000;

const opts = options(`node apollo_client.mjs '{"mode": "multipart" | "persisted" | "batch", ...}'`);
const requests = [];
const fetchFn = recordingFetch(requests);
let client;

function newClient(link) {
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

async function multipart() {
  client = newClient(
    new HttpLink({
      uri: opts.url,
      fetch: fetchFn,
      headers: { authorization: `Bearer ${opts.token}` },
    }),
  );
  const failed = deferred();
  const comment = deferred();
  const oddsFirst = deferred();
  const oddsLive = deferred();
  const comments = [];
  const odds = [];

  function subscribe(name, query, variables, onData) {
    return client.subscribe({ query, variables, fetchPolicy: "no-cache" }).subscribe({
      next: (result) => {
        if (result.error) failed.reject(new Error(`${name}: ${result.error.message}`));
        else onData(result.data);
      },
      error: (error) => failed.reject(new Error(`${name}: ${error?.message ?? error}`)),
      complete: () => failed.reject(new Error(`${name}: completed by the server`)),
    });
  }

  const comments$ = subscribe(
    "commentAdded",
    gql`
      subscription CommentAdded($articleId: ID!, $afterSequence: Int) {
        commentAdded(articleId: $articleId, afterSequence: $afterSequence) {
          id
          sequence
          body
          author {
            username
          }
        }
      }
    `,
    { articleId: opts.articleId, afterSequence: opts.afterSequence },
    (data) => {
      comments.push(data.commentAdded);
      comment.resolve(data.commentAdded);
    },
  );
  const odds$ = subscribe(
    "oddsUpdated",
    gql`
      subscription OddsUpdated($marketId: ID!) {
        oddsUpdated(marketId: $marketId) {
          seq
          market {
            id
          }
          outcomes {
            id
            probability
          }
          lastTrade {
            amount
            shares
            outcome {
              id
            }
            user {
              username
            }
          }
        }
      }
    `,
    { marketId: opts.marketId },
    (data) => {
      odds.push(data.oddsUpdated);
      if (odds.length === 1) oddsFirst.resolve(data.oddsUpdated);
      else oddsLive.resolve(data.oddsUpdated);
    },
  );
  const race = (promise, what) =>
    withTimeout(Promise.race([promise, failed.promise]), LIVE_TIMEOUT_MS, what);

  // The odds' first message means that subscription is live; the comment posted next reaches
  // the comments' stream live, or replayed after afterSequence: either way exactly once.
  const first = await race(oddsFirst.promise, "the first oddsUpdated message");

  const posted = (
    await client.mutate({
      mutation: gql`
        mutation PostComment($input: PostCommentInput!) {
          postComment(input: $input) {
            comment {
              id
              sequence
              body
            }
            errors {
              code
              message
            }
          }
        }
      `,
      variables: { input: { articleId: opts.articleId, body: opts.body } },
      fetchPolicy: "no-cache",
    })
  ).data.postComment;
  if (posted.errors.length) throw new Error(`postComment: ${JSON.stringify(posted.errors)}`);
  const bought = (
    await client.mutate({
      mutation: gql`
        mutation BuyShares($input: BuySharesInput!) {
          buyShares(input: $input) {
            trade {
              id
              amount
              shares
            }
            errors {
              code
              message
            }
          }
        }
      `,
      variables: { input: { outcomeId: opts.outcomeId, amount: "5.00" } },
      fetchPolicy: "no-cache",
    })
  ).data.buyShares;
  if (bought.errors.length) throw new Error(`buyShares: ${JSON.stringify(bought.errors)}`);

  const [, live] = await race(
    Promise.all([comment.promise, oddsLive.promise]),
    "the live commentAdded and oddsUpdated messages",
  );
  await new Promise((resolve) => setTimeout(resolve, 200)); // a moment for a duplicate
  comments$.unsubscribe();
  odds$.unsubscribe();
  await new Promise((resolve) => setTimeout(resolve, 50)); // the tee'd copies see the abort

  return {
    comments,
    oddsFirst: first,
    oddsLive: live,
    oddsMessages: odds.length,
    posted: posted.comment,
    trade: bought.trade,
    requests,
  };
}

// API.md's article-page query, from the trusted document the demo client ships, renamed.
const ARTICLE_PAGE = readFileSync(
  new URL("../../demo/operations/ArticlePage.graphql", import.meta.url),
  "utf8",
);

function articlePage(name) {
  return gql(ARTICLE_PAGE.replace("query ArticlePage(", `query ${name}(`));
}

async function persisted() {
  const hashed = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: opts.useGET,
  });
  client = newClient(ApolloLink.from([hashed, new HttpLink({ uri: opts.url, fetch: fetchFn })]));
  const query = articlePage(opts.useGET ? "ArticlePageByGet" : "ArticlePageByPost");
  const runs = [];
  for (let i = 0; i < 2; i += 1) {
    const result = await client.query({
      query,
      variables: { slug: opts.slug },
      fetchPolicy: "no-cache",
    });
    if (result.error) throw new Error(`run ${i + 1}: ${result.error.message}`);
    runs.push({ data: result.data, requestsSoFar: requests.length });
  }
  return { runs, requests };
}

async function batch() {
  client = newClient(
    new BatchHttpLink({ uri: opts.url, fetch: fetchFn, batchMax: 10, batchInterval: 20 }),
  );
  const queries = [
    [gql("query Stats { stats { articleCount marketCount } }"), {}],
    [
      gql(
        "query Article($slug: String!) { article(slug: $slug) { id slug title author { name } } }",
      ),
      { slug: opts.slug },
    ],
    [
      gql(
        "query Markets { markets(first: 3) { totalCount nodes { slug status outcomes { label probability } } } }",
      ),
      {},
    ],
    [gql("query Categories { categories { slug name } }"), {}],
  ];
  const results = await Promise.all(
    queries.map(([query, variables]) => client.query({ query, variables, fetchPolicy: "no-cache" })),
  );
  for (const result of results) {
    if (result.error) throw new Error(result.error.message);
  }
  return { results: results.map((result) => result.data), requests };
}

const MODES = { multipart, persisted, batch };
if (!MODES[opts.mode]) throw new Error(`unknown mode ${opts.mode}`);

run(MODES[opts.mode], {
  onError: () => client?.stop(),
  report: () => ({ requests }),
});
