// The Outpoll article page, live: a reference client of the Agora GraphQL API in plain
// JavaScript, no build step. Queries and mutations go over HTTP (fetch); subscriptions over one
// websocket (graphql-transport-ws, graphql-ws's browser build). Every operation is a file of
// demo/operations/ handed over in the page's config, so no query text lives here.
//
// Safety rule: comment.bodyHtml and article.bodyHtml are sanitised by the server and go in with
// innerHTML; every other string goes in as text (el() below, textContent, or the templates of
// index.html).
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("agora-config").textContent);
  const httpUrl = new URL(config.url, location.href).href;
  const wsUrl = httpUrl.replace(/^http/, "ws");
  const TOKEN_KEY = "agora.token";
  const $ = (id) => document.getElementById(id);

  const state = {
    token: localStorage.getItem(TOKEN_KEY),
    me: null,
    article: null,
    comments: new Map(), // id → { comment, element, hidden, through } (hidden: see announce())
    tally: null, // the comment count: see resetCount()
    // The read's lastCommentSequence, then the highest sequence commentAdded has delivered: a
    // new subscription resumes after it. Raised only by those, which come in order: a
    // mutation's result could jump past a comment still on its way.
    lastSequence: 0,
    markets: new Map(), // id → { market, element, history, since, quote }
    live: null, // { client, stops } of the current websocket
    retries: 0,
    reconnectTimer: 0,
    loads: 0, // the latest load(): an older one still running gives way
  };

  // -- GraphQL over HTTP --------------------------------------------------------------------

  /** Run the operation `name` of demo/operations: its data, or an Error with the messages of
   * its GraphQL errors (a refused quote's message, say). */
  async function gql(name, variables = {}) {
    const headers = { "content-type": "application/json", accept: "application/json" };
    if (state.token) headers.authorization = `Bearer ${state.token}`;
    const response = await fetch(httpUrl, {
      method: "POST",
      headers,
      body: JSON.stringify({ query: config.operations[name], operationName: name, variables }),
    });
    const body = await response.json().catch(() => null);
    if (!body) throw new Error(`The server answered ${response.status} to ${name}.`);
    if (body.errors && body.errors.length) {
      throw new Error(body.errors.map((error) => error.message).join(" "));
    }
    return body.data;
  }

  function setToken(token) {
    state.token = token;
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  }

  // -- small helpers --------------------------------------------------------------------------

  /** An element with properties (attributes for names it has no property of) and children;
   * strings become text nodes, never HTML. */
  function el(tag, props = {}, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key in element) element[key] = value;
      else element.setAttribute(key, value);
    }
    element.append(...children.filter((child) => child != null));
    return element;
  }

  const clone = (id) => $(id).content.firstElementChild.cloneNode(true);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const percent = (p) => `${(p * 100).toFixed(1)}%`;
  const unsigned = (decimal) => decimal.replace(/^-/, "");
  const day = (iso) => new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" });

  const UNITS = [
    ["year", 365 * 86400], ["month", 30 * 86400], ["week", 7 * 86400],
    ["day", 86400], ["hour", 3600], ["minute", 60],
  ];
  const relative = new Intl.RelativeTimeFormat("en", { numeric: "always" });

  /** "3 hours ago", "1 week ago", "just now" (also for a server clock a little ahead). */
  function ago(iso) {
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    const [unit, size] = UNITS.find(([, size]) => seconds >= size) || [];
    return unit ? relative.format(-Math.floor(seconds / size), unit) : "just now";
  }

  function timeElement(iso, element = el("time")) {
    element.dateTime = iso;
    element.title = new Date(iso).toLocaleString();
    element.textContent = ago(iso);
    return element;
  }

  // Relative times age while the page is open.
  setInterval(() => {
    for (const time of document.querySelectorAll("time[datetime]")) {
      time.textContent = ago(time.dateTime);
    }
  }, 30_000);

  /** Initials on a colour of their own, the same for one person all over the page. */
  function avatar(element, initials, key) {
    let hash = 0;
    for (const char of key) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
    element.textContent = initials;
    element.style.setProperty("--hue", String(hash % 360));
  }

  function say(output, text, error = false) {
    output.textContent = text;
    output.classList.toggle("error", error);
  }

  /** Run `task` with the form's buttons disabled. What it throws, or the first of the
   * UserErrors it returns, shows in `output`. */
  async function busy(form, output, task) {
    const buttons = form.querySelectorAll("button");
    buttons.forEach((button) => (button.disabled = true));
    say(output, "");
    try {
      const errors = await task();
      if (errors && errors.length) say(output, errors[0].message, true);
    } catch (error) {
      say(output, error.message, true);
    } finally {
      buttons.forEach((button) => (button.disabled = false));
    }
  }

  /** An idempotency key (crypto.randomUUID exists in secure contexts only). */
  const newKey = () =>
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"))
      .join("");

  // -- loading the page -----------------------------------------------------------------------

  /** (Re)load the viewer and the article, then go live. Runs again after logging in or out:
   * the comments' viewerCanEdit and the markets' positions depend on who reads. */
  async function load() {
    const generation = ++state.loads;
    stopLive();
    setStatus("connecting");
    await loadViewer();
    let article = null;
    try {
      article = config.slug && (await gql("DemoArticle", { slug: config.slug })).article;
    } catch (error) {
      return generation === state.loads && showMissing(error.message);
    }
    if (generation !== state.loads) return;
    if (!article) return showMissing();
    state.article = article;
    renderArticle(article);
    renderComments(article);
    renderMarkets(article.markets);
    renderRelated(article.relatedArticles);
    startLive();
  }

  async function loadViewer() {
    state.me = null;
    if (state.token) {
      try {
        state.me = (await gql("Me")).me;
        if (!state.me) setToken(null); // expired or revoked: it reads as anonymous
      } catch {
        // the server is unreachable: keep the token for the next try
      }
    }
    const me = state.me;
    document.body.classList.toggle("signed-in", Boolean(me));
    $("login-form").hidden = $("comment-login").hidden = Boolean(me);
    $("whoami").hidden = $("comment-form").hidden = !me;
    if (me) {
      $("me-name").textContent = me.displayName;
      avatar($("me-avatar"), me.initials, me.username);
    }
    if (!$("wallet-panel").hidden) refreshWallet();
  }

  /** "No such article" (an unknown slug: the API's article is null), or why it didn't load. */
  function showMissing(problem) {
    setStatus("idle"); // nothing to follow live
    const missing = clone("missing-template");
    if (problem) {
      missing.querySelector("h1").textContent = "The article could not load";
      missing.querySelector("p").textContent = problem;
    } else {
      document.title = "No such article · Outpoll";
    }
    $("page").replaceChildren(missing);
  }

  // -- the article ----------------------------------------------------------------------------

  function renderArticle(article) {
    document.title = `${article.title} · Outpoll`;
    const crumbs = article.breadcrumb;
    // The trail stays short as on the source page (News / section / title); the chips show
    // the whole category path.
    const section = crumbs.length > 1 ? crumbs[crumbs.length - 2] : crumbs[0];
    $("breadcrumb").replaceChildren(
      el("li", {}, el("a", { href: "/demo", textContent: "News" })),
      section ? el("li", { textContent: section.name }) : null,
      el("li", { textContent: article.title, "aria-current": "page" }),
    );
    $("chips").replaceChildren(
      ...crumbs.map((category) => el("li", { className: "chip", textContent: category.name })),
    );
    $("title").textContent = article.title;
    avatar($("author-avatar"), article.author.initials, article.author.name);
    $("author-name").textContent = `By ${article.author.name}`;
    $("meta").replaceChildren(
      timeElement(article.publishedAt),
      ` · ${article.readingTimeMinutes} min read · `,
      el("span", { id: "meta-comments" }),
    );
    // The body as the server rendered and sanitised it (Article.bodyHtml), like comments.
    $("body").innerHTML = article.bodyHtml;
    $("tags").replaceChildren(
      ...article.tags.map((tag) => el("li", { className: "tag", textContent: `#${tag.slug}` })),
    );
    const market = article.markets[0];
    $("cta").hidden = !market;
    $("cta-question").textContent = market ? market.question : "";
  }

  function renderRelated(articles) {
    $("related").replaceChildren(
      ...articles.map((article) => {
        const item = clone("related-template");
        const link = item.querySelector("a");
        link.href = `/demo/${encodeURIComponent(article.slug)}`;
        link.textContent = article.title;
        timeElement(article.publishedAt, item.querySelector("time"));
        const count = plural(article.commentCount, "comment");
        item.querySelector(".related-comments").textContent = count;
        return item;
      }),
    );
  }

  // -- the comment count ----------------------------------------------------------------------
  // A read's commentCount counts exactly the visible comments up to its lastCommentSequence
  // (`after`). Past that, each comment counts once, by id, when seen visible (shown on the page
  // or not: a reply in a thread the page didn't load counts too), and each deletion once.

  /** Start over from a read (DemoArticle, DemoRefresh): its count, the comments the page shows,
   * and those commentAdded brought that may be newer than the read (shown or not). */
  function resetCount(article) {
    const { commentCount: count, lastCommentSequence: after } = article;
    const old = state.tally;
    state.tally = { count, after, added: new Map(), gone: new Set() }; // added: id → sequence
    for (const { comment } of state.comments.values()) countRead(comment);
    for (const [id, sequence] of old ? old.added : []) {
      countRead({ id, sequence, deleted: old.gone.has(id) });
    }
    renderCount();
  }

  function countAdded({ id, sequence }) {
    const tally = state.tally;
    if (sequence <= tally.after || tally.added.has(id) || tally.gone.has(id)) return;
    tally.added.set(id, sequence);
    tally.count += 1;
    renderCount();
  }

  /** `happened`: an event or a mutation's result, after the read, so the read's count has the
   * comment if its sequence is up to `after`. A read showing a comment deleted is no such news:
   * the read's count left it out (unless it was counted here, after the read). */
  function countDeleted({ id, sequence }, happened = true) {
    const tally = state.tally;
    if (tally.gone.has(id)) return;
    tally.gone.add(id);
    if (tally.added.has(id) || (happened && sequence <= tally.after)) tally.count -= 1;
    renderCount();
  }

  /** A comment as a read shows it. */
  const countRead = (comment) =>
    comment.deleted ? countDeleted(comment, false) : countAdded(comment);

  function renderCount() {
    $("comment-count").textContent = String(state.tally.count);
    $("meta-comments").textContent = plural(state.tally.count, "comment");
  }

  // -- comments -------------------------------------------------------------------------------

  function renderComments(article) {
    const connection = article.comments;
    state.comments.clear();
    const through = article.lastCommentSequence;
    $("comment-list").replaceChildren(...connection.nodes.map((n) => threadElement(n, through)));
    // commentAdded resumes after the read: what the lists show that is newer comes again, and
    // is dropped as seen (by id); nothing committed after the read is missed.
    state.lastSequence = article.lastCommentSequence;
    resetCount(article);
    $("comments-loading").hidden = true;
    $("comments-more").hidden = !connection.pageInfo.hasNextPage;
    $("comments-more").textContent =
      `Showing the ${connection.nodes.length} newest of ${connection.totalCount} threads.`;
  }

  /** A comment with the replies loaded along, nested; "Show 2 replies" where the query
   * stopped (threads nest deeper than one query reaches). `through`: see announce(). */
  function threadElement(node, through) {
    const element = commentElement(node);
    const replies = node.replies ? node.replies.nodes : [];
    element.querySelector(".replies").append(...replies.map((r) => threadElement(r, through)));
    announce(state.comments.get(node.id), node.replyCount || 0, through);
    return element;
  }

  /** "Show 2 replies": those of the comment's replyCount the page doesn't show. The count was
   * read with the replies up to sequence `through`: a reply placed later counts as shown if it
   * is one of those, and not if it is newer (then it wasn't in the count). */
  function announce(entry, replyCount, through) {
    const shown = [...entry.element.querySelector(".replies").children].filter(
      (li) => !state.comments.get(li.dataset.id).comment.deleted,
    );
    entry.hidden = replyCount - shown.length; // replyCount counts visible replies only
    entry.through = through;
    renderMore(entry);
  }

  function renderMore(entry) {
    const more = entry.element.firstElementChild.querySelector("[data-action=more]");
    more.hidden = entry.hidden <= 0;
    more.textContent = entry.hidden === 1 ? "Show 1 reply" : `Show ${entry.hidden} replies`;
  }

  function commentElement(comment) {
    const element = clone("comment-template");
    element.dataset.id = comment.id;
    element.dataset.sequence = comment.sequence;
    const row = element.firstElementChild; // the comment's own parts; its replies follow
    avatar(row.querySelector(".avatar"), comment.author.initials, comment.author.username);
    row.querySelector(".comment-author").textContent = comment.author.displayName;
    timeElement(comment.createdAt, row.querySelector(".comment-time"));
    const entry = { comment: { ...comment }, element };
    state.comments.set(comment.id, entry);
    renderComment(entry);
    return element;
  }

  function renderComment({ comment, element }) {
    const row = element.firstElementChild;
    const body = row.querySelector(".comment-body");
    body.classList.toggle("deleted", comment.deleted);
    if (comment.deleted) body.textContent = "[deleted]";
    else body.innerHTML = comment.bodyHtml; // sanitised by the server
    row.querySelector(".comment-edited").hidden = !comment.editedAt || comment.deleted;
    row.querySelector("[data-action=reply]").hidden = comment.deleted;
    row.querySelector("[data-action=edit]").hidden = !comment.viewerCanEdit;
    row.querySelector("[data-action=delete]").hidden = !comment.viewerCanDelete;
    if (comment.deleted) row.querySelector(".comment-slot").replaceChildren();
  }

  /** Put a comment in its place, once: threads newest first, replies oldest first. */
  function placeComment(comment, through = 0) {
    if (state.comments.has(comment.id)) return null;
    const parent = comment.parent && state.comments.get(comment.parent.id);
    if (comment.parent && !parent) return null; // a reply in a thread this page didn't load
    const list = parent ? parent.element.querySelector(".replies") : $("comment-list");
    const after = (li) => (parent ? 1 : -1) * (Number(li.dataset.sequence) - comment.sequence) > 0;
    const element = threadElement(comment, through);
    list.insertBefore(element, [...list.children].find(after) || null);
    if (parent && comment.sequence <= parent.through) {
      parent.hidden -= 1; // one of the replies its "Show 2 replies" announced
      renderMore(parent);
    }
    return element;
  }

  /** A new comment: counted, and in its place (if its thread is here), highlighted a moment. */
  function insertComment(comment) {
    countAdded(comment);
    if (state.tally.gone.has(comment.id)) return; // its deletion came first
    const element = placeComment(comment);
    if (element) element.classList.add("fresh");
  }

  /** An edit or deletion, from a mutation's result, commentUpdated or DemoRefresh (in any
   * order): a deletion is final, and an older edit than the one shown changes nothing. */
  function updateComment(entry, changes) {
    const shown = entry.comment;
    if (shown.deleted || (changes.editedAt || "") < (shown.editedAt || "")) return;
    Object.assign(shown, changes);
    if (shown.deleted) {
      shown.viewerCanEdit = shown.viewerCanDelete = false;
      countDeleted(shown);
    }
    renderComment(entry);
  }

  function onCommentAdded(comment) {
    state.lastSequence = Math.max(state.lastSequence, comment.sequence);
    // The subscription is the same for every reader (one execution serves them all), so it
    // has no viewerCanEdit: one's own comment gets the buttons its author has.
    const mine = Boolean(state.me) && comment.author.username === state.me.username;
    const defaults = { editedAt: null, deleted: false, viewerCanEdit: mine, viewerCanDelete: mine };
    insertComment({ ...defaults, ...comment });
  }

  function onCommentUpdated(comment) {
    const entry = state.comments.get(comment.id);
    if (entry) updateComment(entry, comment);
    else if (comment.deleted) countDeleted(comment); // one this page doesn't show
  }

  /** Once the subscriptions are sent (after the first read, and after a reconnect):
   * commentAdded resumes after the last comment seen, but the edits and deletions made before
   * commentUpdated was listening don't come again. Read the comments the page shows (updated
   * in place: an open reply form stays) and the count as they are now. */
  async function catchUp(live) {
    const ids = [...state.comments.keys()];
    const reads = [];
    let i = 0;
    const batch = config.maxNodeIds; // what nodes(ids:) takes at a time
    do reads.push(gql("DemoRefresh", { slug: state.article.slug, ids: ids.slice(i, i + batch) }));
    while ((i += batch) < ids.length);
    const results = await Promise.all(reads).catch(() => null); // (then until the next one)
    if (!results || live !== state.live || !results[0].article) return;
    const { article } = results[0];
    // Shown deleted here, live in the read: deleted since, and counted by the read.
    let deletedSince = 0;
    for (const comment of results.flatMap((data) => data.nodes)) {
      const entry = comment && state.comments.get(comment.id);
      if (!entry) continue;
      const stale = !comment.deleted && entry.comment.deleted;
      if (stale && comment.sequence <= article.lastCommentSequence) deletedSince += 1;
      updateComment(entry, comment);
      announce(entry, comment.replyCount, article.lastCommentSequence);
    }
    resetCount(article);
    state.tally.count -= deletedSince;
    renderCount();
  }

  /** Post a comment or a reply; its UserErrors ([] on success). */
  async function postComment(body, parentId) {
    const variables = { articleId: state.article.id, body, parentId };
    const { postComment: result } = await gql("DemoPostComment", variables);
    if (result.comment) {
      // commentAdded may have brought it first, without the viewer's permissions.
      const entry = state.comments.get(result.comment.id);
      if (entry) updateComment(entry, result.comment);
      else insertComment(result.comment);
    }
    return result.errors;
  }

  $("comment-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    busy(form, form.querySelector(".form-error"), async () => {
      const errors = await postComment(form.elements.body.value, null);
      if (!errors.length) form.reset();
      return errors;
    });
  });

  /** A small form under a comment: a reply, an edit, or the question before deleting. */
  function openSlot(entry, { prompt, value, button }, run) {
    const slot = entry.element.firstElementChild.querySelector(".comment-slot");
    const form = clone("slot-template");
    const body = form.elements.body;
    form.querySelector(".prompt").textContent = prompt || "";
    if (value === undefined) body.remove();
    else body.value = value;
    form.querySelector("[type=submit]").textContent = button;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(form, form.querySelector(".form-error"), async () => {
        const errors = await run(body.value);
        if (!errors.length) slot.replaceChildren();
        return errors;
      });
    });
    form.querySelector(".cancel").addEventListener("click", () => slot.replaceChildren());
    slot.replaceChildren(form);
    (body.isConnected ? body : form.querySelector("[type=submit]")).focus();
  }

  /** EditComment or DeleteComment, then the comment as it now is; its UserErrors. */
  async function changeComment(entry, name, variables = {}) {
    const data = await gql(name, { commentId: entry.comment.id, ...variables });
    const result = data.editComment || data.deleteComment;
    if (result.comment) updateComment(entry, result.comment);
    return result.errors;
  }

  const commentActions = {
    reply: (entry) =>
      openSlot(entry, { value: "", button: "Post reply" }, (body) =>
        postComment(body, entry.comment.id),
      ),
    edit: (entry) =>
      openSlot(entry, { value: entry.comment.body, button: "Save" }, (body) =>
        changeComment(entry, "EditComment", { body }),
      ),
    delete: (entry) =>
      openSlot(entry, { prompt: "Delete this comment? Its replies stay.", button: "Delete" }, () =>
        changeComment(entry, "DeleteComment"),
      ),
    more: async (entry, button) => {
      button.disabled = true;
      const through = state.lastSequence; // the read below has every comment delivered by now
      const { node } = await gql("DemoReplies", { id: entry.comment.id }).catch(() => ({}));
      for (const reply of node ? node.replies.nodes : []) {
        countRead(reply);
        // Its deletion may have come over the websocket before this read's answer.
        const gone = state.tally.gone.has(reply.id) && !reply.deleted;
        placeComment(gone ? { ...reply, deleted: true, body: "", bodyHtml: "" } : reply, through);
      }
      if (node) entry.hidden = 0;
      renderMore(entry);
      button.disabled = false;
    },
  };

  // One listener for every comment's buttons, those of comments arriving live included.
  $("comment-list").addEventListener("click", (event) => {
    const button = event.target.closest(".comment-actions button[data-action]");
    const entry = button && state.comments.get(button.closest(".comment").dataset.id);
    if (entry) commentActions[button.dataset.action](entry, button);
  });

  // -- markets --------------------------------------------------------------------------------

  function renderMarkets(markets) {
    state.markets.clear();
    $("market-list").replaceChildren(...markets.map(marketElement));
    $("no-market").hidden = markets.length > 0;
  }

  function marketElement(market) {
    const element = clone("market-template");
    element.dataset.id = market.id;
    element.querySelector(".question").textContent = market.question;
    const open = market.status === "OPEN";
    element.querySelector(".market-meta").textContent = open
      ? `Open · closes ${day(market.closesAt)}`
      : `${market.status.toLowerCase()}: trading has ended`;
    element.querySelector("select").append(
      ...market.outcomes.map((o) => el("option", { value: o.id, textContent: o.label })),
    );
    const history = market.priceHistory.map((point) => point.probabilities);
    const entry = { market, element, history, since: market.priceHistory[0]?.at, quote: null };
    state.markets.set(market.id, entry);
    renderOdds(entry);
    renderHolding(entry, market.viewerPosition);
    if (open) wireTrade(entry);
    else element.querySelectorAll(".trade, .trade-login").forEach((part) => part.remove());
    return element;
  }

  function renderOdds(entry) {
    entry.element.querySelector(".outcomes").replaceChildren(
      ...entry.market.outcomes.map((outcome, i) => {
        const item = clone("outcome-template");
        item.classList.add(`c${i}`);
        item.dataset.label = outcome.label;
        item.querySelector(".label").textContent = outcome.label;
        item.querySelector(".percent").textContent = percent(outcome.probability);
        item.querySelector(".bar").style.width = percent(outcome.probability);
        return item;
      }),
    );
    drawChart(entry);
  }

  function svg(tag, attributes, text) {
    const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text) element.textContent = text;
    return element;
  }

  /** The price history, one line per outcome. The x axis counts changes, not hours: trades come
   * in bursts days apart, and a time axis would squeeze each burst into a cliff. */
  function drawChart({ market, element, history, since }) {
    const [width, height, pad] = [300, 120, 6];
    const x = (i) => (history.length > 1 ? (i / (history.length - 1)) * width : width);
    const y = (p) => (pad + (1 - p) * (height - 2 * pad)).toFixed(1);
    const parts = [25, 50, 75].flatMap((level) => [
      svg("line", { class: "grid", x1: 0, x2: width, y1: y(level / 100), y2: y(level / 100) }),
      svg("text", { class: "axis", x: 3, y: y(level / 100) - 2 }, `${level}%`),
    ]);
    market.outcomes.forEach((_, n) => {
      const d = history.map((odds, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(odds[n])}`);
      if (d.length) parts.push(svg("path", { class: `line c${n}`, d: d.join("") }));
    });
    element.querySelector(".chart").replaceChildren(...parts);
    const span = since ? ` since ${day(since)}` : "";
    element.querySelector(".chart-caption").textContent =
      `Odds after each of ${plural(history.length, "change")}${span}`;
  }

  function onOdds(marketId, update) {
    const entry = state.markets.get(marketId);
    if (!entry) return;
    const byId = new Map(update.outcomes.map((outcome) => [outcome.id, outcome.probability]));
    for (const outcome of entry.market.outcomes) {
      if (byId.has(outcome.id)) outcome.probability = byId.get(outcome.id);
    }
    const odds = entry.market.outcomes.map((outcome) => outcome.probability);
    const last = entry.history[entry.history.length - 1];
    // The first message repeats the odds as they are: only a change is a new point.
    if (!last || odds.some((p, i) => p !== last[i])) entry.history.push(odds);
    renderOdds(entry);
  }

  /** "You hold 27.5352 Yes.": the viewer's positions in this market. */
  function renderHolding(entry, positions) {
    const labels = new Map(entry.market.outcomes.map((outcome) => [outcome.id, outcome.label]));
    const held = positions.filter((position) => Number(position.shares) > 0);
    const holding = entry.element.querySelector(".holding");
    holding.hidden = !state.me || !held.length;
    const what = held.map((position) => `${position.shares} ${labels.get(position.outcome.id)}`);
    holding.textContent = `You hold ${what.join(" and ")}.`;
  }

  /** Buy (credits) or sell (shares): a quote first; Confirm then runs the trade with the
   * quote's idempotency key, so a Confirm repeated after a lost answer trades only once. */
  function wireTrade(entry) {
    const form = entry.element.querySelector(".trade");
    const quoteBox = form.querySelector(".quote");
    const message = form.querySelector(".trade-message");
    const { quantity, outcome } = form.elements;
    const forget = () => {
      entry.quote = null;
      quoteBox.hidden = true;
    };
    form.addEventListener("input", () => {
      forget(); // a quote for other inputs can't be confirmed
      const selling = form.elements.side.value === "sell";
      quantity.placeholder = selling ? "Shares" : "Credits";
      quantity.setAttribute("aria-label", selling ? "Shares to sell" : "Credits to spend");
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      forget();
      const selling = form.elements.side.value === "sell";
      const value = quantity.value.trim();
      if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) {
        return say(message, "Enter a positive number, like 10 or 2.5.", true);
      }
      const variables = { outcomeId: outcome.value, [selling ? "shares" : "amount"]: value };
      busy(form, message, async () => {
        // A refusal (shares not held, funds short, market closed) is a GraphQL error here.
        const { quote: q } = await gql("Quote", variables);
        const label = q.outcome.label;
        form.querySelector(".quote-text").textContent =
          `${selling ? "Sell" : "Buy"} ${q.shares} shares of ${label} for ${q.amount} credits ` +
          `(average price ${q.averagePrice.toFixed(3)}). ${label}: ` +
          `${percent(q.probabilityBefore)} → ${percent(q.probabilityAfter)}.`;
        entry.quote = { name: selling ? "SellShares" : "BuyShares", variables, key: newKey() };
        quoteBox.hidden = false;
      });
    });
    quoteBox.addEventListener("click", (event) => {
      const action = event.target.closest("button[data-action]")?.dataset.action;
      if (action === "cancel") forget();
      if (action !== "confirm" || !entry.quote) return;
      const { name, variables, key } = entry.quote;
      busy(form, message, async () => {
        const data = await gql(name, { ...variables, idempotencyKey: key });
        const result = data.buyShares || data.sellShares;
        if (result.errors.length) return result.errors;
        forget();
        quantity.value = "";
        const { shares, amount } = result.trade;
        say(
          message,
          `${shares.startsWith("-") ? "Sold" : "Bought"} ${unsigned(shares)} shares for ` +
            `${unsigned(amount)} credits. Balance: ${result.balance}.`,
        );
        refreshWallet(); // the new odds come over the websocket, as for every reader
      });
    });
  }

  // -- wallet, stats, session -----------------------------------------------------------------

  async function refreshWallet() {
    const summary = $("wallet-summary");
    $("positions").hidden = true;
    if (!state.me) {
      summary.textContent = "Log in to see your wallet.";
      return;
    }
    let me;
    try {
      ({ me } = await gql("Wallet"));
    } catch (error) {
      summary.textContent = `The wallet could not load: ${error.message}`;
      return;
    }
    if (!me) return;
    const positions = me.positions.nodes;
    summary.textContent =
      `Balance: ${me.balance} credits · ${plural(positions.length, "position")}`;
    $("positions").hidden = !positions.length;
    $("positions").tBodies[0].replaceChildren(
      ...positions.map((position) => {
        const row = clone("position-template");
        const profit = Number(position.profit);
        const cells = [position.market.question, position.outcome.label, position.shares,
          position.costBasis, position.value, `${profit > 0 ? "+" : ""}${position.profit}`];
        cells.forEach((text, i) => (row.cells[i].textContent = text));
        row.cells[5].classList.add(profit < 0 ? "loss" : "gain");
        return row;
      }),
    );
    for (const [id, entry] of state.markets) {
      renderHolding(entry, positions.filter((position) => position.market.id === id));
    }
  }

  async function refreshStats() {
    try {
      const { stats: s } = await gql("Stats");
      $("stats").textContent =
        `${plural(s.articleCount, "article")} · ${plural(s.commentCount, "comment")} · ` +
        `${plural(s.marketCount, "market")} (${s.openMarketCount} open) · ` +
        `${plural(s.traderCount, "trader")} · ${s.volume} credits traded`;
    } catch (error) {
      $("stats").textContent = `The stats could not load: ${error.message}`;
    }
  }

  for (const [button, panel, onOpen] of [
    ["nav-wallet", "wallet-panel", refreshWallet],
    ["nav-stats", "stats-panel", refreshStats],
  ]) {
    $(button).addEventListener("click", () => {
      $(panel).hidden = !$(panel).hidden;
      $(button).setAttribute("aria-expanded", String(!$(panel).hidden));
      if (!$(panel).hidden) onOpen();
    });
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    busy(form, form.querySelector(".form-error"), async () => {
      const { username, password } = Object.fromEntries(new FormData(form));
      const { logIn } = await gql("LogIn", { username, password });
      if (logIn.errors.length) return logIn.errors;
      setToken(logIn.token);
      form.reset();
      await load();
    });
  });

  $("logout").addEventListener("click", async () => {
    stopLive(); // the server closes its websocket now: that is no loss to recover from
    try {
      await gql("LogOut"); // revokes the token on the server, websockets included
    } catch {
      // forgotten here either way
    }
    setToken(null);
    await load();
  });

  // -- live: one websocket for comments, edits and odds ---------------------------------------

  const STATUS = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…",
    idle: "", failed: "Live updates failed" };
  function setStatus(name, detail = "") {
    const status = $("live-status");
    status.dataset.state = name;
    status.textContent = STATUS[name];
    status.title = detail;
  }

  /** Subscribe to the article's comments, edits and odds; once they are sent, read again what
   * they don't resend (catchUp). */
  function startLive() {
    if (!window.graphqlWs) return setStatus("failed", "graphql-ws did not load");
    const live = { client: null, stops: [], since: 0 }; // since: when it connected
    live.client = graphqlWs.createClient({
      url: wsUrl,
      connectionParams: state.token ? { authorization: `Bearer ${state.token}` } : {},
      // No retries inside the client: it would resubscribe commentAdded with the afterSequence
      // it began with. lost() reconnects instead, resuming after the last comment seen. (The
      // client retries a normal close, code 1000, whatever retryAttempts says: `closed` hands
      // every close to lost(), which disposes this client first.)
      retryAttempts: 0,
      on: {
        connected: () => {
          live.since = Date.now();
          setStatus("live");
          // The subscribe messages go out in the promise jobs that follow: a timer runs after.
          setTimeout(() => catchUp(live));
        },
        closed: (event) => lost(live, event),
      },
    });
    state.live = live;
    const listen = (name, variables, onData) => {
      const request = { query: config.operations[name], operationName: name, variables };
      const sink = {
        next: ({ data }) => data && onData(data),
        error: (error) => lost(live, error),
        complete: () => {},
      };
      live.stops.push(live.client.subscribe(request, sink));
    };
    const articleId = state.article.id;
    listen("CommentAdded", { articleId, afterSequence: state.lastSequence }, (data) =>
      onCommentAdded(data.commentAdded),
    );
    listen("CommentUpdated", { articleId }, (data) => onCommentUpdated(data.commentUpdated));
    // oddsUpdated starts with the odds as they are: after a reconnect too, nothing to re-read.
    for (const marketId of state.markets.keys()) {
      listen("OddsUpdated", { marketId }, (data) => onOdds(marketId, data.oddsUpdated));
    }
  }

  function stopLive() {
    clearTimeout(state.reconnectTimer);
    const live = state.live;
    state.live = null;
    if (!live) return;
    live.stops.forEach((stop) => stop());
    // dispose() awaits the connection: one that failed rejects it (nothing to clean up then).
    Promise.resolve(live.client.dispose()).catch(() => {});
  }

  // GraphQL errors that end a subscription for now: the client fell behind, too much to replay,
  // the database away a moment. The others (BAD_USER_INPUT, NOT_FOUND…) would come again.
  const TRANSIENT = new Set(["SUBSCRIPTION_OVERFLOW", "REPLAY_LIMIT", "INTERNAL_SERVER_ERROR",
    "SERVICE_UNAVAILABLE"]);

  /** A subscription ended with an error; all of a lost connection's do, at once. */
  function lost(live, error) {
    if (live !== state.live) return; // a connection already replaced
    if (Array.isArray(error) && !error.some((e) => TRANSIENT.has(e.extensions?.code))) {
      return setStatus("failed", error.map((e) => e.message).join(" "));
    }
    stopLive(); // then a new connection, resuming every subscription after what was seen
    if (error && error.code === 4403 && state.token) {
      setToken(null); // the session ended (logged out elsewhere, expired): go on anonymously
      return load();
    }
    // Back off (up to 0.5 s, 1 s, 2 s … 10 s), at random within that ("full jitter") so that
    // a restarted server isn't hit by every reader at once. A connection that lasted had the
    // server working: the count starts again (not at once, or a subscription failing as soon
    // as it starts would be retried without end every few hundred milliseconds).
    if (live.since && Date.now() - live.since > 10_000) state.retries = 0;
    const delay = Math.max(100, Math.random() * Math.min(10_000, 500 * 2 ** state.retries++));
    setStatus("reconnecting");
    state.reconnectTimer = setTimeout(startLive, delay);
  }

  load();
})();
