"""graphql-http's server audit (npm ``graphql-http``, pinned in ``tests/node``) passes whole.

``serverAudits`` is the GraphQL-over-HTTP spec's conformance suite as its reference
implementation ships it: media types (``application/graphql-response+json`` chosen when the
client accepts it, ``application/json`` for ``*/*`` or no Accept), UTF-8 both ways, GET and POST
(no mutations over GET), 400s for malformed bodies and parameters, and, when the client accepts
``application/graphql-response+json``, 4xx with no ``data`` for documents that don't parse or
validate and for variables that don't coerce (200 with ``application/json``). This test runs all
of them from node (``tests/node/graphql_http_audit.mjs``) against the app under a real uvicorn
on loopback (development settings, SQLite with the demo data) and asserts that every one is
``ok``: not a warning, not an error, not a notice; the message names each one that isn't, with
what the server answered.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import prepare_database, with_settings
from tests.nodetools import node_tools, run_node, served

AUDITS = 61  # serverAudits of graphql-http 1.23.1


async def test_every_graphql_over_http_audit_of_graphql_http_passes(tmp_path: Path) -> None:
    node = node_tools()
    settings = with_settings(
        await prepare_database(f"sqlite://{tmp_path}/agora.sqlite3", demo=True),
        env="development",
    )

    async with served(settings) as address:
        report = await run_node(
            node, "graphql_http_audit.mjs", json.dumps({"url": f"http://{address}/graphql"})
        )

    results = report["results"]
    not_ok = [
        f"{r['status'].upper()} {r['id']} {r['name']}: {r.get('reason')}\n"
        f"    answered {json.dumps(r.get('response'))}"
        for r in results
        if r["status"] != "ok"
    ]
    assert not not_ok, f"{len(not_ok)} of {len(results)} audits not ok:\n" + "\n".join(not_ok)
    assert len(results) == AUDITS
    assert len({r["id"] for r in results}) == AUDITS
