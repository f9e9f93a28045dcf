"""Logging: structured lines (JSON in production, pretty in development), every one bounded.

Every record, the app's (``get_logger``, ``get_structured``) and the libraries' (uvicorn,
asyncpg, tortoise), goes through one renderer (``formatter``: structlog's ProcessorFormatter),
so each line carries the level, logger, time and the request id bound for the request or socket
(structlog's context variables) and, in production, is one JSON object.

A hostile client can't flood it: a failing 1 MB slug used to add ~2.9 MB to the log (the value
in the message, again in the chained exception, again in the traceback). Errors are logged
through ``loggable_traceback``, every record passes ``TruncatingFilter`` on the way out and every
value of a line is cut to LOG_VALUE_MAX_CHARS; access-log lines keep the path but not the query
string, which can carry variables (a password sent in a GET, say). Lone surrogates are escaped,
so no handler fails to encode a line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
import traceback
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, TextIO

import structlog
from structlog.stdlib import ProcessorFormatter
from structlog.typing import EventDict, Processor, WrappedLogger

from settings import Settings

# Longest value kept in a log message (LOG_VALUE_MAX_CHARS); configure_logging sets it.
value_max_chars = 300
# Most traceback lines kept for one error (the innermost frames are the useful ones).
TRACEBACK_MAX_LINES = 60


def truncate(text: str, limit: int | None = None) -> str:
    """``text`` cut to ``limit`` characters (default: LOG_VALUE_MAX_CHARS), saying how much
    was cut; lone surrogates escaped so no handler fails to encode the line."""
    limit = value_max_chars if limit is None else limit
    if len(text) > limit:
        text = f"{text[:limit]}…[{len(text) - limit} more characters]"
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def loggable_traceback(exc: BaseException) -> str:
    """``exc``'s traceback (chained causes included) with every line truncated."""
    lines = "".join(traceback.format_exception(exc)).splitlines()
    if len(lines) > TRACEBACK_MAX_LINES:
        lines = [*lines[:10], "  …", *lines[-(TRACEBACK_MAX_LINES - 11) :]]
    return "\n".join(truncate(line) for line in lines)


_CUT = "_agora_cut"


class TruncatingFilter(logging.Filter):
    """Cuts every record's message and traceback to a bounded size; strips query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Shorten ``record`` in place (once: a logger's filter and a handler's both see it);
        never drops it."""
        if getattr(record, _CUT, False):
            return True
        setattr(record, _CUT, True)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = loggable_traceback(record.exc_info[1])
        if isinstance(record.msg, dict):
            return True  # structlog's event: its values are cut as the line is rendered
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            args = list(record.args)
            if len(args) >= 3 and isinstance(args[2], str):
                path, sep, query = args[2].partition("?")
                args[2] = truncate(path) + (f"?…[{len(query)} characters]" if sep else "")
                record.args = tuple(args)
        message = record.getMessage()
        limit = value_max_chars * 8
        if len(message) > limit or record.args:
            record.msg, record.args = truncate(message, limit), ()
        return True


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with TruncatingFilter on it, so that records logged there are
    bounded whichever handlers (uvicorn's, pytest's) end up writing them."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, TruncatingFilter) for f in logger.filters):
        logger.addFilter(TruncatingFilter())
    return logger


def get_structured(name: str) -> Any:
    """A structlog logger writing through the stdlib logger ``name`` (filtered as
    ``get_logger``'s): ``log.info("event", key=value, ...)`` becomes one line with those
    fields. structlog is configured once, at import: its own chain only merges the bound
    context (the request id) and hands the event to the stdlib handlers, which render it."""
    get_logger(name)
    return structlog.get_logger(name)


structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)

# -- rendering ------------------------------------------------------------------------------------


def _finish(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Level, logger and time from the record; the traceback bounded; every value cut short.

    One processor rather than structlog's five: this runs for every line, the request line
    of every request among them.
    """
    record: logging.LogRecord = event_dict.pop("_record")
    event_dict.pop("_from_structlog", None)
    event = event_dict.pop("event", "")
    event = event if isinstance(event, str) else str(event)
    line: dict[str, Any] = {
        "timestamp": _timestamp(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
        # The filter cut foreign messages to 8 values' worth already (and said so): the margin
        # keeps its "…[n more characters]" from being cut again.
        "event": truncate(event, value_max_chars * 8 + 64),
    }
    request_id = event_dict.pop("request_id", None)
    if request_id is not None:
        line["request_id"] = request_id
    exc_info = event_dict.pop("exc_info", None)
    event_dict.pop("stack_info", None)
    for key, value in event_dict.items():
        if key not in line:
            line[key] = truncate(value) if isinstance(value, str) else value
    exception = _exception_text(record, exc_info)
    if exception:
        line["exception"] = exception
    return line


def _exception_text(record: logging.LogRecord, exc_info: Any) -> str:
    """The bounded traceback of a line: TruncatingFilter's, or made here."""
    if record.exc_text:
        return record.exc_text
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return loggable_traceback(exc_info)
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[1] is not None:
        return loggable_traceback(exc_info[1])
    return ""


_second = -1
_second_text = ""


def _timestamp(created: float) -> str:
    """``created`` as ISO 8601 in UTC to the millisecond (the seconds' text kept: a line a
    request makes this per-line work worth the few lines)."""
    global _second, _second_text
    whole = int(created)
    if whole != _second:
        _second_text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = whole
    return f"{_second_text}.{int((created - whole) * 1000):03d}Z"


# One encoder: json.dumps with an argument builds a new one per call (a third of its cost).
_encode = json.JSONEncoder(default=repr).encode


def _json(line: dict[str, Any]) -> str:
    return _encode(line)


# Keys as JSON, kept: lines repeat the same few.
_KEYS: dict[str, str] = {}


def _key(key: str) -> str:
    quoted = _quote(key)
    if len(_KEYS) < 256:
        _KEYS[key] = quoted
    return quoted


def _value(value: Any) -> str:
    """One value of an ``emit`` line as JSON, cut short when it is a string; the types a line
    holds written directly (json's encoder builds itself anew per call: a third of a line's
    cost), anything else by it."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _quote(truncate(value))
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        # NaN and the infinities aren't JSON: a line must parse.
        return float.__repr__(value) if math.isfinite(value) else "null"
    return _encode(value)


class Line(dict[str, Any]):
    """The fields of a line ``emit`` writes: rendered as they are, without structlog's chain."""

    __slots__ = ()


class Formatter(ProcessorFormatter):
    """The formatter of every handler: one JSON object a line, or structlog's console line.

    Records of the stdlib loggers (uvicorn, asyncpg, tortoise, "agora") and structlog's go
    through structlog's ProcessorFormatter; ``emit``'s lines (the request lines: one per
    request) are rendered directly, the same way, at a fraction of the cost (measured: ~60 µs
    through structlog's logger and ProcessorFormatter, ~20 µs here).
    """

    def __init__(self, json_lines: bool, colors: bool = False) -> None:
        self.renderer: Processor = (
            structlog.processors.JSONRenderer(serializer=lambda line, **_: _json(line))
            if json_lines
            else structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False)
        )
        self.json_lines = json_lines
        super().__init__(
            processors=[_finish, self.renderer],
            # Foreign records get the request id bound where they were logged: the handler
            # runs in the logging call's context.
            foreign_pre_chain=[structlog.contextvars.merge_contextvars],
        )

    def format(self, record: logging.LogRecord) -> str:
        """``record`` as one line (a console line may carry its traceback below)."""
        fields = record.msg
        if type(fields) is not Line:
            return super().format(record)
        return self.render_line(record.name, record.levelname, record.created, fields)

    def render_line(self, name: str, levelname: str, created: float, fields: Line) -> str:
        """An ``emit`` line (its time, level and logger first)."""
        level = levelname.lower()
        if self.json_lines:
            # As json.dumps writes it (same separators, ASCII), key by key; the usual values
            # inline: a function call a field was a third of the line's cost.
            parts = [
                f'{{"timestamp": "{_timestamp(created)}", "level": "{level}", '
                f'"logger": {_quote(name)}'
            ]
            limit = value_max_chars
            for key, value in fields.items():
                name = _KEYS.get(key) or _key(key)
                kind = type(value)
                if value is None:
                    parts.append(f"{name}: null")
                elif kind is str and len(value) <= limit and value.isascii():
                    parts.append(f"{name}: {_quote(value)}")
                elif kind is int:
                    parts.append(f"{name}: {value}")
                else:
                    parts.append(f"{name}: {_value(value)}")
            return ", ".join(parts) + "}"
        line: dict[str, Any] = {
            "timestamp": _timestamp(created),
            "level": level,
            "logger": name,
        }
        for key, value in fields.items():
            line[key] = truncate(value) if isinstance(value, str) else value
        return str(self.renderer(None, level, line))


def formatter(json_lines: bool, colors: bool = False) -> logging.Formatter:
    """The formatter of every handler (``Formatter``)."""
    return Formatter(json_lines, colors)


def emit(
    logger: logging.Logger,
    event: str,
    fields: dict[str, Any],
    request_id: str | None = None,
    level: int = logging.INFO,
) -> None:
    """One line ``event`` with ``fields`` and ``request_id`` (default: the one bound) on
    ``logger``, the cheap way: no structlog chain, no caller lookup. Its values are cut short
    as every line's."""
    if not logger.isEnabledFor(level):
        return
    line = Line(event=event)
    if request_id is None:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id is not None:
        line["request_id"] = request_id
    line.update(fields)
    handler = _direct(logger, level)
    if handler is None:
        logger.handle(_Record(logger.name, level, line))
        return
    formatter = handler.formatter
    assert isinstance(formatter, Formatter)
    text = formatter.render_line(logger.name, logging.getLevelName(level), time.time(), line)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    handler.acquire()
    try:
        if loop is None:
            # No loop to flush on a timer (a script, a test): written through, as logging does.
            handler.flush_pending()
            handler.stream.write(text + handler.terminator)
            handler.stream.flush()
        else:
            handler.buffer(text + handler.terminator, loop)
    except Exception:
        handler.handleError(_Record(logger.name, level, line))
    finally:
        handler.release()


# Request lines are written in batches (a write and a flush per line were a third of a request
# line's cost): at most this long after the first line of a batch, or once this much waits.
FLUSH_SECONDS = 0.05
FLUSH_CHARS = 64 * 1024


class BufferedHandler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs: a StreamHandler that also takes ``emit``'s
    request lines into a buffer (``buffer``), written out ``FLUSH_SECONDS`` after the first of
    them on the event loop that wrote it, or at ``FLUSH_CHARS``, and before any other record
    (so lines stay in order), on ``flush`` and at exit (``logging.shutdown`` flushes every
    handler: a graceful shutdown loses none; a ``kill -9`` at most the last ``FLUSH_SECONDS``)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.pending: list[str] = []
        self.pending_chars = 0
        self.timer_loop: asyncio.AbstractEventLoop | None = None

    def buffer(self, text: str, loop: asyncio.AbstractEventLoop) -> None:
        """Keep ``text`` for the next write-out (the caller holds the handler's lock)."""
        self.pending.append(text)
        self.pending_chars += len(text)
        if self.pending_chars >= FLUSH_CHARS:
            self.flush_pending()
            self.stream.flush()
        elif self.timer_loop is not loop:
            # One timer per batch, on the loop that wrote its first line (a timer left on a
            # loop that has closed since is replaced by one on this loop).
            self.timer_loop = loop
            loop.call_later(FLUSH_SECONDS, self._timer)

    def _timer(self) -> None:
        self.acquire()
        try:
            self.timer_loop = None
            self.flush_pending()
            self.stream.flush()
        except Exception:
            self.handleError(_Record("agora.access", logging.INFO, Line()))
        finally:
            self.release()

    def flush_pending(self) -> None:
        """Write what waits (the caller holds the lock, or no other thread logs)."""
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.pending_chars = 0
            self.stream.write(text)

    def emit(self, record: logging.LogRecord) -> None:
        """Any other record: after the request lines written before it."""
        if self.pending:
            try:
                self.flush_pending()
            except Exception:
                self.handleError(record)
        super().emit(record)

    def flush(self) -> None:
        """Write what waits, then flush the stream."""
        self.acquire()
        try:
            if self.pending and self.stream is not None:
                self.flush_pending()
        finally:
            self.release()
        super().flush()


# The handler configure_logging installed (production's one handler), while it is installed.
_direct_handler: BufferedHandler | None = None


def _direct(logger: logging.Logger, level: int) -> BufferedHandler | None:
    """``_direct_handler`` when it is the one handler ``logger``'s records reach and nothing
    but TruncatingFilter (which leaves a Line as it is) is on the way: then ``emit`` writes to
    it directly, exactly as logging would have, for a third of the instructions (logging's
    record, filters and handler calls were half of a request line). Anything else (a test's
    handler, a ``--log-config``, a library's) gets the record through logging, as always."""
    handler = _direct_handler
    if handler is None or level < handler.level or not _only_cutting(handler.filters):
        return None
    if not _only_cutting(logger.filters):
        return None
    reached = False
    node: logging.Logger | None = logger
    while node is not None:
        for other in node.handlers:
            if other is not handler:
                return None
            reached = True
        node = node.parent if node.propagate else None
    return handler if reached else None


def _only_cutting(filters: list[Any]) -> bool:
    # A loop, not all(...): this runs for every request line, and a generator costs more.
    for item in filters:  # noqa: SIM110
        if type(item) is not TruncatingFilter:
            return False
    return True


class _Record(logging.LogRecord):
    """An ``emit`` line's record, made without LogRecord's lookups (the caller's file, the
    thread's and process's names: ~a fifth of a line's cost), which its line doesn't write.
    Every attribute a format string may name is there."""

    def __init__(self, name: str, level: int, line: Line) -> None:
        self.name = name
        self.msg = line
        self.args = ()
        self.levelno = level
        self.levelname = logging.getLevelName(level)
        self.pathname = self.filename = self.module = "(app)"
        self.lineno = 0
        self.funcName = "(app)"
        self.exc_info = None
        self.exc_text = None
        self.stack_info = None
        self.created = time.time()
        self.msecs = (self.created - int(self.created)) * 1000
        self.relativeCreated = (self.created - _START) * 1000
        self.thread = self.threadName = self.processName = self.process = None


# When logging was imported, as LogRecord.relativeCreated counts from.
_START: float = getattr(logging, "_startTime", time.time())


# Loggers whose records come from outside the app's own get_logger calls.
_FILTERED = ("uvicorn.access", "uvicorn.error", "agora", "asyncpg", "tortoise")
# uvicorn's loggers, which its default configuration gives handlers of their own.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


def install_log_filters(settings: Settings) -> None:
    """TruncatingFilter on uvicorn's and the app's loggers, whichever handlers write them; the
    value limit from LOG_VALUE_MAX_CHARS."""
    global value_max_chars
    value_max_chars = settings.log_value_max_chars
    for name in _FILTERED:
        get_logger(name)


# Loggers that write SQL statements with their parameters at DEBUG.
_STATEMENT_LOGGERS = ("tortoise.db_client", "aiosqlite", "asyncpg")


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """One handler on ``stream`` (stderr) at LOG_LEVEL for the app and uvicorn, in LOG_FORMAT,
    through TruncatingFilter; uvicorn's own handlers removed (its records go through this one)
    and its access log off (the app writes one line per request itself)."""
    install_log_filters(settings)
    stream = stream or sys.stderr
    handler = BufferedHandler(stream)
    handler.setFormatter(formatter(settings.log_json, colors=_is_tty(stream)))
    handler.addFilter(TruncatingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False):
            old.flush()  # its waiting request lines first
            root.removeHandler(old)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    global _direct_handler
    _direct_handler = handler
    root.setLevel(settings.log_level)
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Whatever LOG_LEVEL says: at DEBUG these write every statement with its parameters
    # (variables, argon2 hashes), which no log line may carry.
    for name in _STATEMENT_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))


def configure_if_unconfigured(settings: Settings) -> None:
    """``install_log_filters``, and ``configure_logging`` unless something configured the root
    logger already (a ``--log-config``, pytest): uvicorn's command line leaves it bare, and the
    app's lines would otherwise be lost (stdlib's last resort writes warnings only, bare)."""
    install_log_filters(settings)
    if not logging.getLogger().handlers:
        configure_logging(settings)


_OURS = "_agora_handler"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
