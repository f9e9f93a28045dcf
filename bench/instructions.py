"""Benchmark: instructions per request of a page, counted by callgrind (valgrind), so that two
trees compare on a loaded machine where timings don't.

    .venv/bin/python -m bench.instructions [--pages article,home] [--app-root DIR ...]
        [--few 5] [--many 30] [--json PATH]

For each tree (``--app-root``, repeatable; default this one) and page it prepares a fresh SQLite
database with the demo data (once per tree), then runs, under ``valgrind --tool=callgrind``, a
child process that creates the app, enters its lifespan and sends the page's GraphQL request
``--few`` times, and again ``--many`` times, straight to the ASGI app (no sockets, no HTTP client:
a scope, one ``http.request`` message, the response collected). Instructions per request are the
difference of the two totals divided by ``--many - --few``: start-up, imports and the first
requests' caches cancel out. Production logging and metrics are on, as ``make bench`` runs.
Valgrind is ~50× slower than the CPU: a tree and page take about a minute.

The figure counts the server's work on every thread (the SQLite thread too) but no kernel time.
It is not CPU time (cache misses, the GIL's hand-offs and system calls weigh nothing here): use
it to compare trees and changes, and bench.article_page for the throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.api import CENTRAL_ASIA
from bench.harness.databases import prepare_database
from bench.harness.servers import BENCH_ROOT, production_env, python_env

ARTICLE_PAGE = (BENCH_ROOT / "demo" / "operations" / "ArticlePage.graphql").read_text()


def _pages() -> dict[str, dict[str, Any]]:
    from bench.article_page import HOME

    return {
        "article": {"query": ARTICLE_PAGE, "variables": {"slug": CENTRAL_ASIA}},
        "home": {"query": HOME},
    }


# The child run under callgrind: the tree's own app (its root first on sys.path), nothing of
# this tree's bench package (an older tree may not have it). argv: body file, request count.
CHILD = """
import asyncio, json, sys

async def call(app, body):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
             "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
    sent = False
    out = []
    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
    async def send(message):
        if message["type"] == "http.response.body":
            out.append(message.get("body", b""))
    await app(scope, receive, send)
    return b"".join(out)

async def main():
    from app import create_app
    app = create_app()
    body = open(sys.argv[1], "rb").read()
    answer = b""
    async with app.router.lifespan_context(app):
        for _ in range(int(sys.argv[2])):
            answer = await call(app, body)
    if b'"errors"' in answer or b'"data"' not in answer:
        raise SystemExit("the page answered with errors: %r" % answer[:500])

asyncio.run(main())
"""


def _instructions(root: Path, url: str, body: Path, count: int) -> int:
    env = production_env(python_env(root, {"AGORA_ENV": "test", "DATABASE_URL": url}))
    env["LOG_LEVEL"] = "WARNING"  # a line per request to stderr would be valgrind's work too
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        CHILD,
        str(body),
        str(count),
    ]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(match.group(1))


def main() -> None:
    """Parse the arguments and print (and optionally write) instructions per request."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default="article,home", help="article,home")
    parser.add_argument("--app-root", action="append", type=Path, help="a tree (repeatable)")
    parser.add_argument("--few", type=int, default=5, help="requests of the short run")
    parser.add_argument("--many", type=int, default=30, help="requests of the long run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.many <= args.few:
        raise SystemExit("--many must be more than --few")
    pages = [page for page in args.pages.split(",") if page]
    unknown = set(pages) - set(_pages())
    if unknown:
        raise SystemExit(f"unknown pages: {', '.join(sorted(unknown))}")
    roots = args.app_root or [BENCH_ROOT]
    figures: dict[str, dict[str, float]] = {}
    for root in roots:
        root = root.resolve()
        with tempfile.TemporaryDirectory(prefix="agora-instr-") as folder:
            url = f"sqlite:///{os.path.join(folder, 'bench.sqlite3')}"
            prepare_database(root, url)
            for page in pages:
                body = Path(folder) / f"{page}.json"
                body.write_text(json.dumps(_pages()[page]))
                few = _instructions(root, url, body, args.few)
                many = _instructions(root, url, body, args.many)
                per_request = (many - few) / (args.many - args.few)
                figures.setdefault(str(root), {})[page] = per_request
                print(f"{root}  {page:8}  {per_request / 1e6:7.2f} M instructions/request")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
