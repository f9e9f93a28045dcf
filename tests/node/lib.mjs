// What the node scripts of the test suite share: their JSON argument, one JSON line out (or a
// message on stderr and exit code 1), timeouts, and a fetch that records every request and
// response the client under test makes, as the tests assert on the wire as well as on results.

/** The script's argument: one JSON object (argv[2]). */
export function options(usage) {
  const raw = process.argv[2];
  if (!raw) fail(`usage: ${usage}`);
  try {
    return JSON.parse(raw);
  } catch {
    return fail(`the argument is not JSON: ${raw}`);
  }
}

/** Exit 1 with `message` on stderr. */
export function fail(message) {
  process.stderr.write(`${process.argv[1].split("/").pop()}: ${message}\n`);
  process.exit(1);
}

/** Run `main`; print its result as one JSON line and exit 0, or fail with its error. Gives up
 * after `totalMs`. `onError` runs first on failure (to dispose a client, say); `report` adds
 * what was seen so far to the failure message. */
export function run(main, { totalMs = 20_000, onError = () => {}, report = () => null } = {}) {
  const watchdog = setTimeout(
    () => fail(`gave up after ${totalMs} ms; seen: ${JSON.stringify(report())}`),
    totalMs,
  );
  main().then(
    (result) => {
      clearTimeout(watchdog);
      process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
    },
    (error) => {
      try {
        onError();
      } catch {
        // failing anyway
      }
      const message = error instanceof Error ? error.stack || error.message : String(error);
      fail(`${message}\nseen: ${JSON.stringify(report())}`);
    },
  );
}

/** A promise with its resolve and reject exposed. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // awaited later, or never if all goes well
  return { promise, resolve, reject };
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A plain GraphQL POST (for what the client under test doesn't do itself); its `data`. */
export async function post(url, token, query, variables) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text}`);
  const body = JSON.parse(text);
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const STREAMING = /^(multipart\/mixed|text\/event-stream)/i;

/**
 * A fetch that appends one record per request to `log`: method, URL (and its query parameters,
 * JSON ones parsed), the request's accept and content-type headers and body (parsed when JSON),
 * the response's status and content-type, and its body: parsed JSON for a plain response; for a
 * streamed one (multipart/mixed, text/event-stream) the raw text as it arrives, read off a copy
 * of the stream while the client reads the other (`record.stream`, `record.ended`).
 */
export function recordingFetch(log, fetchFn = fetch) {
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url);
    const headers = new Headers(init.headers);
    const params = {};
    for (const [key, value] of url.searchParams) params[key] = parseJson(value) ?? value;
    const body = typeof init.body === "string" ? init.body : null;
    const record = {
      method: (init.method || "GET").toUpperCase(),
      path: url.pathname,
      params,
      accept: headers.get("accept"),
      contentType: headers.get("content-type"),
      body: body === null ? null : (parseJson(body) ?? body),
      status: null,
      responseContentType: null,
      response: null,
    };
    log.push(record);
    const response = await fetchFn(input, init);
    record.status = response.status;
    record.responseContentType = response.headers.get("content-type");
    if (!response.body || !STREAMING.test(record.responseContentType || "")) {
      const text = await response.clone().text();
      record.response = parseJson(text) ?? text;
      return response;
    }
    const [mine, theirs] = response.body.tee();
    record.stream = "";
    record.ended = false;
    (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of mine) record.stream += decoder.decode(chunk, { stream: true });
        record.ended = true;
      } catch {
        // the client aborted the request
      }
    })();
    return new Response(theirs, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}
