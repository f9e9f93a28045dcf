"""Logging that a hostile client can't flood: values cut short, query strings never written.

A failing 1 MB slug used to add ~2.9 MB to the log (the value in the message, again in the
chained exception, again in the traceback). Errors are logged through ``loggable_traceback`` and
every record passes ``TruncatingFilter`` on the way out; access-log lines keep the path but not
the query string, which can carry variables (a password sent in a GET, say).
"""

from __future__ import annotations

import logging
import traceback

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
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def loggable_traceback(exc: BaseException) -> str:
    """``exc``'s traceback (chained causes included) with every line truncated."""
    lines = "".join(traceback.format_exception(exc)).splitlines()
    if len(lines) > TRACEBACK_MAX_LINES:
        lines = [*lines[:10], "  …", *lines[-(TRACEBACK_MAX_LINES - 11) :]]
    return "\n".join(truncate(line) for line in lines)


class TruncatingFilter(logging.Filter):
    """Cuts every record's message and traceback to a bounded size; strips query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Shorten ``record`` in place; never drops it."""
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
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = loggable_traceback(record.exc_info[1])
        return True


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with TruncatingFilter on it, so that records logged there are
    bounded whichever handlers (uvicorn's, pytest's) end up writing them."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, TruncatingFilter) for f in logger.filters):
        logger.addFilter(TruncatingFilter())
    return logger


# Loggers whose records come from outside the app's own get_logger calls.
_FILTERED = ("uvicorn.access", "uvicorn.error", "agora", "asyncpg", "tortoise")


def install_log_filters(settings: Settings) -> None:
    """TruncatingFilter on uvicorn's and the app's loggers, whichever handlers write them; the
    value limit from LOG_VALUE_MAX_CHARS."""
    global value_max_chars
    value_max_chars = settings.log_value_max_chars
    for name in _FILTERED:
        get_logger(name)


def configure_logging(settings: Settings) -> None:
    """One stderr handler at LOG_LEVEL for the app and uvicorn, through TruncatingFilter."""
    install_log_filters(settings)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, TruncatingFilter) for f in handler.filters):
            handler.addFilter(TruncatingFilter())
