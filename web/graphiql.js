// GraphiQL for Agora: queries and mutations over HTTP, subscriptions over the websocket
// (graphql-transport-ws, graphql-ws's browser build), the tabs from the page's config.
(function () {
  "use strict";
  const root = document.getElementById("graphiql");
  const missing = ["React", "ReactDOM", "GraphiQL", "GraphiQLPluginExplorer", "graphqlWs"]
    .filter((name) => !(name in window));
  if (missing.length) {
    root.innerHTML = "";
    const p = document.createElement("p");
    p.className = "agora-loading";
    p.textContent = "GraphiQL could not load its scripts (" + missing.join(", ") +
      "): run `make assets` on the server, or check the network.";
    root.append(p);
    return;
  }
  const config = JSON.parse(document.getElementById("agora-config").textContent);
  const url = new URL(config.url, location.href).href;
  const wsUrl = url.replace(/^http/, "ws");

  // One websocket client per Authorization value: the token from the Headers editor goes in
  // connection_init, as the API expects ({"authorization": "Bearer …"}).
  const fetchers = new Map();
  function fetcherFor(authorization) {
    if (!fetchers.has(authorization)) {
      const wsClient = graphqlWs.createClient({
        url: wsUrl,
        connectionParams: authorization ? { authorization } : {},
        retryAttempts: 5,
      });
      fetchers.set(authorization, GraphiQL.createFetcher({ url, wsClient }));
    }
    return fetchers.get(authorization);
  }
  function fetcher(params, options) {
    // GraphiQL 3 can hand over the operation name and document of the tab run before: read
    // both from the query sent, so a switched tab runs its own operation (and a subscription
    // goes to the websocket).
    let documentAST;
    try {
      documentAST = GraphiQL.GraphQL.parse(params.query);
    } catch {
      documentAST = undefined; // the server says what is wrong with it
    }
    if (documentAST) {
      const names = documentAST.definitions
        .filter((definition) => definition.kind === "OperationDefinition")
        .map((definition) => definition.name && definition.name.value);
      if (!names.includes(params.operationName)) {
        params = { ...params, operationName: names.length === 1 ? names[0] : undefined };
      }
      options = { ...options, documentAST };
    }
    const headers = (options && options.headers) || {};
    const key = Object.keys(headers).find((name) => name.toLowerCase() === "authorization");
    return fetcherFor(key ? String(headers[key]) : "")(params, options);
  }

  const props = {
    fetcher,
    defaultTabs: config.tabs,
    defaultEditorToolsVisibility: true,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
  };
  // GraphiQL 3 opens the first of defaultTabs without its variables: on a first visit (no tabs
  // stored yet) hand them over as the initial editor values. Later visits restore their tabs.
  if (!localStorage.getItem("graphiql:tabState")) {
    props.variables = config.tabs[0].variables;
  }
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
