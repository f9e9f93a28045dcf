// The PostGraphile 5 peer of `python -m bench.peer`: Agora's PostgreSQL database, as
// PostGraphile reflects it (tables, foreign keys, unique constraints), served over HTTP.
//
//   node server.mjs --port N --database postgres://…   (DATABASE_URL works too)
//
// POST /graphql answers GraphQL; GET /healthz answers 200 once the schema is built (the bench
// harness waits on it, as it does for every server). No GraphiQL, no watch mode, no explain:
// the production shape. The pool holds as many connections as Agora's (PEER_POOL_SIZE).
import { createServer } from "node:http";
import { parseArgs } from "node:util";

import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { grafserv } from "postgraphile/grafserv/node";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    database: { type: "string", default: process.env.DATABASE_URL ?? "" },
  },
});
if (!values.port || !values.database) {
  console.error("usage: node server.mjs --port N --database postgres://…");
  process.exit(2);
}
const connectionString = values.database.replace(/^(asyncpg|postgresql):/, "postgres:");

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString,
      schemas: ["public"],
      poolConfig: { max: Number(process.env.PEER_POOL_SIZE ?? 10) },
    }),
  ],
  grafserv: { graphqlPath: "/graphql", graphiql: false, watch: false },
  grafast: { explain: false },
  schema: {
    // Reads only: the peer serves the same page, never writes.
    pgForbidSetofFunctionsToReturnNull: false,
  },
  disablePlugins: ["MutationPlugin"],
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
await pgl.getSchema(); // built before /healthz says ready

// One handler, so a request is answered once: /healthz here, everything else by grafserv.
const graphql = serv.createHandler();
const server = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  graphql(req, res);
});
server.keepAliveTimeout = 600_000;
server.headersTimeout = 601_000;
server.listen(Number(values.port), "127.0.0.1", () => {
  console.error(`postgraphile peer on 127.0.0.1:${values.port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    pgl.release().finally(() => process.exit(0));
  });
}
