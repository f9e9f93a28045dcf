"""The options every benchmark takes and the one way they all run.

``--app-root DIR`` is the tree whose app is measured (default: the one this bench lives in):
its server, its database set-up and any project command run from there. ``--json PATH`` writes
the results (``bench.harness.results``). The database is a temporary SQLite file unless
``--database-url`` (an empty PostgreSQL database) or ``--postgres`` (a throwaway server).
Benchmarks that can run the app as several workers also take ``--workers N`` and ``--redis`` /
``--redis-url`` (``bench.harness.deployment``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import deployment, pinning, servers
from bench.harness.databases import (
    POSTGRES_SCHEMES,
    Unavailable,
    create_database,
    ensure_empty_postgres,
    is_sqlite,
    prepare_database,
    start_postgres,
)
from bench.harness.results import Results, write_json
from bench.harness.servers import BENCH_ROOT

BenchFn = Callable[[argparse.Namespace, str, Path], Coroutine[Any, Any, Results]]


def app_root(text: str) -> Path:
    """An argument naming an Agora tree (a folder with the app: app.py or app/), made absolute."""
    root = Path(text).resolve()
    if not ((root / "app.py").is_file() or (root / "app" / "__init__.py").is_file()):
        raise argparse.ArgumentTypeError(f"not an Agora tree (no app.py, no app/): {root}")
    return root


def subset(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argument type: a comma-separated subset of ``choices``, in the order given."""

    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not names or any(name not in choices for name in names):
            raise argparse.ArgumentTypeError(f"a comma-separated subset of {', '.join(choices)}")
        return list(dict.fromkeys(names))

    return parse


def add_common_arguments(
    parser: argparse.ArgumentParser, databases: bool = True, workers: bool = False
) -> None:
    """``--app-root``, ``--json``, (unless ``databases`` is false) the database options and (if
    ``workers``) ``--workers`` and the Redis options."""
    parser.add_argument(
        "--app-root",
        type=app_root,
        default=BENCH_ROOT,
        help=f"the tree whose app is measured (default: {BENCH_ROOT})",
    )
    parser.add_argument("--json", type=Path, help="write the ratios and raw figures here")
    parser.add_argument(
        "--pin",
        choices=pinning.MODES,
        default="off",
        help="auto: servers (and PostgreSQL, Redis) on one CPU, the load generator on another "
        "(bench.harness.pinning); off (default): wherever the scheduler puts them",
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="run the app's servers with production logging and metrics on (AGORA_ENV="
        "production, LOG_FORMAT=json, LOG_LEVEL=INFO), as make bench does",
    )
    if not databases:
        return
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url", help="an EMPTY PostgreSQL database (postgres://…); default: temp SQLite"
    )
    where.add_argument(
        "--postgres",
        action="store_true",
        help="start a throwaway PostgreSQL server, bench on it, stop it",
    )
    if workers:
        deployment.add_arguments(parser)


def check_common(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    url = getattr(args, "database_url", None)
    if url and not url.startswith(POSTGRES_SCHEMES):
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    if hasattr(args, "workers"):
        deployment.check_arguments(parser, args)


@contextmanager
def scratch_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="agora-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def chosen_database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """The URL of the database to bench on (a throwaway server is stopped afterwards)."""
    if getattr(args, "postgres", False):
        server = start_postgres()
        postmaster = pinning.postmaster_pid(f"{server.folder}/data")
        if postmaster is not None:
            pinning.pin_pid(postmaster)  # its backends, forked later, inherit it
        args.postgres_server = server  # for a benchmark that measures its CPU too
        try:
            url = asyncio.run(create_database(server, f"agora_bench_{uuid.uuid4().hex[:12]}"))
            print(f"throwaway PostgreSQL on 127.0.0.1:{server.port}")
            yield url
        finally:
            server.stop()
    elif getattr(args, "database_url", None):
        asyncio.run(ensure_empty_postgres(args.database_url))
        yield args.database_url
    else:
        yield f"sqlite://{folder}/agora-bench.sqlite3"


def run(
    benchmark: str,
    args: argparse.Namespace,
    bench: BenchFn,
    runner: Callable[[Coroutine[Any, Any, Results]], Results] = asyncio.run,
) -> int:
    """Prepare the database from ``--app-root``, run ``bench`` on it, write ``--json``.

    With ``--redis`` a throwaway Redis runs meanwhile (``args.redis_url`` is its URL); the CPU
    it used is printed and written with the figures.
    """
    began = time.time()
    placement = pinning.configure(getattr(args, "pin", "off"))
    servers.production = bool(getattr(args, "production", False))
    with scratch_folder() as folder:
        try:
            with chosen_database(args, folder) as url, deployment.chosen_redis(args) as redis:
                kind = "SQLite" if is_sqlite(url) else "PostgreSQL"
                print(f"preparing the database ({kind}) with the app of {args.app_root} …")
                seconds = prepare_database(args.app_root, url)
                print(f"  migrated and seeded in {seconds:.1f}s")
                if redis is not None:
                    pinning.pin_pid(redis.process.pid)
                redis_cpu = redis.cpu_seconds() if redis else 0.0
                results = runner(bench(args, url, folder))
                results.figures["placement"] = placement.as_json()
                results.figures["production_observability"] = servers.production
                if hasattr(args, "workers"):
                    results.figures["deployment"] = deployment.Deployment.of(args, url).as_json()
                if redis is not None:
                    redis_cpu = redis.cpu_seconds() - redis_cpu
                    results.figures["redis_server_cpu_seconds"] = redis_cpu
                    print(f"redis-server (throwaway) used {redis_cpu:.2f}s of CPU during the run")
        except Unavailable as exc:
            print(f"cannot run the benchmark: {exc}")
            results = Results(2)
    if args.json:
        write_json(args.json, benchmark, args.app_root, results, began)
    return results.status
