"""``python -m app.serve`` (``make serve``): the app in production, in one process or as WORKERS
processes under a supervisor, with a graceful shutdown.

Start-up, in this order: the settings are checked (WORKERS > 1 needs PostgreSQL and Redis:
refused otherwise, exit code 2), the database is migrated once, here (demo data is loaded into an
empty database outside production only: ``app.prepare_database``), then one ``AgoraServer``
serves in this process (WORKERS=1), or this process becomes an ``AgoraSupervisor`` (uvicorn's
``Multiprocess``) whose spawned workers each run an ``AgoraServer`` on the socket it bound. Before
they start it points prometheus-client's multi-process mode (``PROMETHEUS_MULTIPROC_DIR``) at a
fresh folder of its own, or empties the operator's of its ``*.db`` files.

Shutdown, on SIGTERM or SIGINT: ``/readyz`` answers 503 at once (``app.lifecycle``); the server
keeps accepting for SHUTDOWN_DELAY_SECONDS (load balancers notice), then closes its listening
sockets and idle keep-alive connections, lets in-flight HTTP requests finish, and has the app end
its HTTP subscription streams and close its websockets with 1012 once their in-flight operation
is done; then the lifespan shuts down as always (bounded by the same timeout). What is still
running SHUTDOWN_TIMEOUT_SECONDS after accepting stopped is cut (tasks cancelled, websockets
closed by uvicorn) and the process ends; a second signal cuts at once. The supervisor forwards
the first signal to every worker and a second one too, and kills a worker still alive
SHUTDOWN_DELAY_SECONDS + 2 × SHUTDOWN_TIMEOUT_SECONDS + ``KILL_MARGIN_SECONDS`` after the first.

Exit codes: 0 a clean shutdown; 1 something was cut (the timeout, a second signal, a killed or
dead worker, an application shutdown over the timeout); 2 settings refused; 3 a worker or the
server failed to start (uvicorn's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

import metrics
from app import prepare_database, uvicorn_options
from app.lifecycle import STATE_KEY, Lifecycle
from logs import configure_logging, get_logger, truncate
from settings import Settings, SettingsError, load_settings

logger = get_logger("agora.serve")

EXIT_CLEAN = 0
EXIT_CUT = 1
EXIT_REFUSED = 2
# After a second signal the process ends this soon whatever still runs (a thread holding a
# SQLite connection would keep the interpreter from exiting at all).
FORCED_EXIT_SECONDS = 1.0
# How long cancelled tasks get to run their cleanup when what remains is cut.
CUT_GRACE_SECONDS = 0.5
# The supervisor kills a worker still alive this long after delay + 2 × timeout.
KILL_MARGIN_SECONDS = 5.0
# How long a starting worker may take to answer its first health check (it imports the app).
STARTUP_GRACE_SECONDS = 60.0
# With AGORA_ENV=test every response names the worker process that answered it (tests tell the
# workers apart with it; production doesn't say).
WORKER_HEADER = "x-agora-worker"

_POLL_SECONDS = 0.05


# -- start-up checks ----------------------------------------------------------------------------


def redacted(url: str) -> str:
    """``url`` without its password, for messages (never raises: a URL too malformed to
    split is shown as its scheme only)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":…@", 1)
    return parts._replace(netloc=netloc).geturl()


def refusal(settings: Settings) -> str | None:
    """Why these settings can't be served by ``app.serve`` (one paragraph), or None."""
    if not settings.database_url.startswith(("sqlite", "postgres://", "postgresql://")):
        return (
            f"agora: DATABASE_URL must be sqlite://FILE or postgres://user:pass@host:port/db, "
            f"got {redacted(settings.database_url)!r}."
        )
    if settings.workers == 1:
        return None
    if settings.is_sqlite:
        return (
            f"agora: refusing WORKERS={settings.workers} on SQLite "
            f"(DATABASE_URL={redacted(settings.database_url)}). SQLite is one file with one "
            "writer, served by one process: several workers would queue on its write lock, and "
            "the trades' row locks (SELECT … FOR UPDATE) don't exist there. The in-process "
            "broker can't reach other workers either, so a subscriber on one worker would miss "
            "what is posted through another. Use DATABASE_URL=postgres://… and "
            "REDIS_URL=redis://… (`make services` starts a throwaway pair on this machine and "
            "prints both), or WORKERS=1."
        )
    if not settings.redis_url:
        return (
            f"agora: refusing WORKERS={settings.workers} without REDIS_URL. Without it each "
            "worker has its own in-process broker, so events (new comments, odds, revoked "
            "sessions) would reach only the subscribers of the worker that published them. "
            "Set REDIS_URL=redis://host:port/0 (`make services` starts a throwaway Redis and "
            "PostgreSQL on this machine and prints both), or WORKERS=1."
        )
    return None


def prepare_metrics_folder(workers: int) -> Path | None:
    """Get prometheus-client's multi-process folder ready before any worker writes to it.

    The operator's (``PROMETHEUS_MULTIPROC_DIR`` already set) is emptied of the ``*.db`` files
    an earlier run left (their counters would be summed into this run's). Otherwise, with
    several workers, a fresh folder is made and set in the environment the workers inherit;
    it is returned, for the caller to remove at the end. One process needs none.
    """
    folder = metrics.multiprocess_dir()
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        # This process's own files stay: metrics is imported, and prometheus-client already
        # writes to them (deleted, the one server's values would vanish from every scrape).
        own = f"_{os.getpid()}.db"
        for stale in path.glob("*.db"):
            if not stale.name.endswith(own):
                stale.unlink()
        return None
    if workers == 1:
        return None
    created = Path(tempfile.mkdtemp(prefix="agora-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(created)
    return created


# -- one server ---------------------------------------------------------------------------------


def _is_websocket(connection: object) -> bool:
    # Subclasses too (app.wire.DirectWebSocketProtocol, every start path's).
    return any(
        cls.__module__.startswith("uvicorn.protocols.websockets")
        for cls in type(connection).__mro__
    )


def _describe(task: asyncio.Task[Any]) -> str:
    """A task, and the innermost line it waits at (following what each coroutine awaits)."""
    where = ""
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            where = f" at {frame.f_code.co_filename}:{frame.f_lineno}"
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return f"{task.get_name()}{where}"


def _hard_exit() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write("agora: the shutdown was forced; exiting now\n")
        sys.stderr.flush()
    os._exit(EXIT_CUT)


class AgoraServer(uvicorn.Server):
    """uvicorn's server with the graceful shutdown described in this module's docstring.

    ``supervised``: a worker under ``AgoraSupervisor``, which ignores SIGINT (a terminal's
    Ctrl-C reaches the supervisor too, which forwards it as SIGTERM: counted twice, one Ctrl-C
    would cut everything). ``owns_process``: after a shutdown that had to cut, the process
    ends as soon as the server has stopped (what was cut may hold threads or tasks that would
    keep it alive); off when a test embeds the server.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        settings: Settings,
        supervised: bool = False,
        owns_process: bool = False,
    ) -> None:
        super().__init__(config)
        self.settings = settings
        self.supervised = supervised
        self.owns_process = owns_process
        # Something in flight had to be cut (the timeout, or a second signal).
        self.cut = False
        self._watchdog: threading.Timer | None = None
        if settings.env == "test":
            # Built in the process that serves (a worker builds its own), before the config
            # is loaded (which encodes the headers).
            config.headers = [*config.headers, (WORKER_HEADER, str(os.getpid()))]

    @property
    def exit_code(self) -> int:
        """0 after a clean shutdown, 1 if something had to be cut."""
        return EXIT_CUT if self.cut or self.force_exit else EXIT_CLEAN

    def lifecycle(self) -> Lifecycle | None:
        """The served app's Lifecycle (from its lifespan state, once it has started)."""
        lifespan = getattr(self, "lifespan", None)
        state = getattr(lifespan, "state", None) or {}
        found = state.get(STATE_KEY)
        return found if isinstance(found, Lifecycle) else None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve until shut down; then, if something was cut, end the process here."""
        await super().serve(sockets)
        if self.owns_process and (self.cut or self.force_exit):
            _exit_now(self.exit_code)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First SIGTERM/SIGINT: drain (readiness off at once); a second one: cut at once.

        uvicorn's own handler re-raises the signal once the server has stopped (so the process
        dies of it); this one doesn't, so the exit code says how the shutdown went.
        """
        if self.supervised and sig == signal.SIGINT:
            return
        if self.should_exit:
            if not self.force_exit:
                self.force_exit = True
                self._watchdog = threading.Timer(FORCED_EXIT_SECONDS, _hard_exit)
                self._watchdog.daemon = True
                self._watchdog.start()
            return
        self.should_exit = True
        lifecycle = self.lifecycle()
        if lifecycle is not None:
            lifecycle.start_draining()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain, then shut the lifespan down (see the module's docstring)."""
        lifecycle = self.lifecycle()
        if lifecycle is not None:
            lifecycle.start_draining()
        delay = self.settings.shutdown_delay_seconds
        if delay and not self.force_exit:
            logger.info("Draining: /readyz answers 503, still accepting for %d s", delay)
            await self._wait(lambda: False, delay)
        logger.info("Shutting down: accepting no more connections")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        # Idle keep-alive connections close now; busy ones once their response is sent.
        # Websockets are the app's to close (after their in-flight operation).
        for connection in list(self.server_state.connections):
            if not _is_websocket(connection):
                connection.shutdown()
        drain = asyncio.create_task(lifecycle.drain()) if lifecycle is not None else None
        if lifecycle is None:
            # Not our app: nothing closes its websockets but uvicorn (1012, at once).
            for connection in list(self.server_state.connections):
                connection.shutdown()
        state = self.server_state
        done = await self._wait(
            lambda: not state.connections and not state.tasks,
            self.settings.shutdown_timeout_seconds,
        )
        if not done:
            await self._cut(drain)
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain
        if not self.force_exit:
            # The app's own clean-up (database pool, broker, hashing threads): bounded too, so
            # that nothing in it can keep the process from ending.
            try:
                await asyncio.wait_for(
                    self.lifespan.shutdown(), self.settings.shutdown_timeout_seconds
                )
            except TimeoutError:
                self.cut = True
                logger.error(
                    "The application's shutdown took over SHUTDOWN_TIMEOUT_SECONDS; still "
                    "running: %s",
                    "; ".join(_describe(task) for task in asyncio.all_tasks()),
                )

    async def _wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait until ``condition()`` holds (True), or ``seconds`` pass or a second signal
        comes (False)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not condition():
            if self.force_exit or asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_POLL_SECONDS)
        return True

    async def _cut(self, drain: asyncio.Task[None] | None) -> None:
        self.cut = True
        state = self.server_state
        logger.error(
            "Cutting %d connection(s) and %d task(s): %s",
            len(state.connections),
            len(state.tasks),
            "second signal" if self.force_exit else "SHUTDOWN_TIMEOUT_SECONDS exceeded",
        )
        for connection in list(state.connections):
            connection.shutdown()
        logging.getLogger("uvicorn.error").addFilter(_CutRequests())
        tasks = list(state.tasks)
        if drain is not None:
            tasks.append(drain)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CUT_GRACE_SECONDS)


class _CutRequests(logging.Filter):
    """Drops uvicorn's traceback of a request the shutdown cancelled (the "Cutting" line has
    counted it: it is no error of the app's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record of a cancellation."""
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


def _exit_now(code: int) -> None:
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve_one(settings: Settings) -> int:
    """Serve the app in this process until it is shut down; the exit code."""
    from app import create_app

    prepare_metrics_folder(1)
    # As the supervisor does: a reload needs migrations (a new start), a closed terminal is no
    # reason to stop without draining, and a stopped process would hold its clients.
    for ignored in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(ignored, signal.SIG_IGN)
    config = uvicorn.Config(create_app(settings), **uvicorn_options(settings))
    server = AgoraServer(config, settings, owns_process=True)
    server.run()
    if not server.started:
        return STARTUP_FAILURE
    return server.exit_code


# -- several workers ----------------------------------------------------------------------------


class AgoraProcess(Process):
    """One worker: an ``AgoraServer`` in a spawned process (built from the environment, as the
    app itself is, by its factory).

    Unlike uvicorn's own workers, ours import the app before they can answer the supervisor's
    health checks (the class lives in it): until its first answer a worker that is alive gets
    ``STARTUP_GRACE_SECONDS``, so a slow start on a busy machine isn't taken for a hang.
    """

    started_at = 0.0
    answered = False

    @property
    def server(self) -> AgoraServer:
        """This worker's server (built in the worker)."""
        if not isinstance(self._server, AgoraServer):
            self._server = AgoraServer(
                self.config, load_settings(), supervised=True, owns_process=True
            )
        return self._server

    def start(self) -> None:
        """Start the worker process."""
        self.started_at = time.monotonic()
        super().start()

    def is_alive(self, timeout: float = 5) -> bool:
        """Whether the worker lives and answers (see the class's docstring for its start)."""
        if not self.answered:
            starting = time.monotonic() - self.started_at < STARTUP_GRACE_SECONDS
            if self.process.is_alive() and starting:
                self.answered = self.ping(0.05)
                return True
        answers = super().is_alive(timeout)
        self.answered = self.answered or answers
        return answers

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        """In the worker: logging as the app's, the server built before uvicorn's health-check
        thread can race to build another, then serve and exit with the server's code."""
        configure_logging(load_settings())
        server = self.server
        super().target(sockets)
        sys.exit(server.exit_code)


class AgoraSupervisor(Multiprocess):
    """uvicorn's supervisor, with ``AgoraProcess`` workers, a bounded shutdown that keeps
    handling signals (a second SIGTERM/SIGINT reaches the workers), dead workers' live metrics
    dropped, and an exit code."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], settings: Settings
    ) -> None:
        super().__init__(config, sockets)
        self.settings = settings
        self.exit_code = EXIT_CLEAN
        self.signals_seen = 0

    def new_process(self) -> AgoraProcess:
        """A worker, not yet started."""
        return AgoraProcess(self.config, self.sockets)

    def init_processes(self) -> None:
        """Start the workers."""
        for _ in range(self.processes_num):
            process = self.new_process()
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        """Replace a worker that died or hangs (as uvicorn does, with our workers), dropping its
        live gauges; stop if one failed to start."""
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            self._forget(process)
            if process.exitcode == STARTUP_FAILURE:
                logger.error("Worker [%s] failed to start: stopping", process.pid)
                self.exit_code = STARTUP_FAILURE
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning(
                "Worker [%s] died (exit code %s): starting another", process.pid, process.exitcode
            )
            replacement = self.new_process()
            replacement.start()
            self.processes[index] = replacement

    def handle_int(self) -> None:
        """Ctrl-C: shut down (the workers ignore the SIGINT they get from the terminal too)."""
        self._first_signal("SIGINT")

    def handle_term(self) -> None:
        """SIGTERM: shut down."""
        self._first_signal("SIGTERM")

    def _first_signal(self, name: str) -> None:
        self.signals_seen += 1
        logger.info("Received %s: shutting the workers down", name)
        self.should_exit.set()

    def handle_hup(self) -> None:
        """Not supported: new code needs its migrations, which only a new start runs."""
        logger.warning("SIGHUP ignored: restart the service to reload (it migrates first)")

    def handle_ttin(self) -> None:
        """Not supported: the number of workers is WORKERS."""
        logger.warning("SIGTTIN ignored: set WORKERS and restart")

    def handle_ttou(self) -> None:
        """Not supported: the number of workers is WORKERS."""
        logger.warning("SIGTTOU ignored: set WORKERS and restart")

    def terminate_all(self) -> None:
        """SIGTERM to every worker. The supervisor's copy of the listening socket closes first:
        once the workers close theirs, new connections are refused, not left in the backlog."""
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def join_all(self) -> None:
        """Wait for the workers while handling signals (a second SIGTERM/SIGINT is forwarded:
        they cut at once); kill any still alive after delay + twice the timeout (the drain's,
        then the application's own shutdown's) + a margin."""
        settings = self.settings
        deadline = (
            time.monotonic()
            + settings.shutdown_delay_seconds
            + 2 * settings.shutdown_timeout_seconds
            + KILL_MARGIN_SECONDS
        )
        forwarded = self.signals_seen > 1  # two came before the workers were told
        if forwarded:
            self._forward()
        while True:
            alive = [process for process in self.processes if process.process.is_alive()]
            if not alive:
                break
            for sig in tuple(self.signal_queue):
                self.signal_queue.remove(sig)
                if sig in (signal.SIGINT, signal.SIGTERM) and not forwarded:
                    forwarded = True
                    self._forward()
            if time.monotonic() >= deadline:
                for process in alive:
                    logger.error("Worker [%s] still running: killed", process.pid)
                    process.kill()
                    self.exit_code = max(self.exit_code, EXIT_CUT)
            alive[0].process.join(_POLL_SECONDS * 2)
        for process in self.processes:
            process.process.join()
            self._forget(process)
            code = process.exitcode
            if code != 0:
                # Which worker, and how (a negative code is the signal that ended it: a worker
                # told to stop while it was still importing the app has no handler yet).
                logger.warning("Worker [%s] ended with exit code %s", process.pid, code)
            if code == STARTUP_FAILURE:
                self.exit_code = STARTUP_FAILURE
            elif code != 0:
                self.exit_code = max(self.exit_code, EXIT_CUT)

    def _forward(self) -> None:
        logger.warning("Second signal: the workers cut what remains")
        for process in self.processes:
            if process.process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def _forget(self, process: Process) -> None:
        if process.pid is not None:
            metrics.mark_process_dead(process.pid)


def serve_workers(settings: Settings) -> int:
    """Serve the app with WORKERS processes under a supervisor; the exit code."""
    created = prepare_metrics_folder(settings.workers)
    try:
        config = uvicorn.Config(
            "app:create_app",
            factory=True,
            workers=settings.workers,
            **uvicorn_options(settings),
        )
        sock = config.bind_socket()
        supervisor = AgoraSupervisor(config, [sock], settings)
        supervisor.run()
        return supervisor.exit_code
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


# -- the command --------------------------------------------------------------------------------


def main() -> int:
    """``python -m app.serve``: check, migrate, serve; the exit code."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agora: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    problem = refusal(settings)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_REFUSED
    configure_logging(settings)
    try:
        asyncio.run(prepare_database(settings))
    except Exception as exc:
        print(
            f"agora: could not migrate the database at {redacted(settings.database_url)}: "
            f"{truncate(repr(exc), 500)}",
            file=sys.stderr,
        )
        return STARTUP_FAILURE
    logger.info(
        "serving http://%s:%s/graphql with %d worker(s)",
        settings.host,
        settings.port,
        settings.workers,
    )
    if settings.workers == 1:
        return serve_one(settings)
    return serve_workers(settings)


if __name__ == "__main__":
    sys.exit(main())
