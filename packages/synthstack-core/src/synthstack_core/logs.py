"""Log lines as JSON (``SYNTHSTACK_LOG_FORMAT=json``), and the access log (a leaf module).

The formatter is python-json-logger's (a maintained, pure-Python ``logging.Formatter`` that writes a
record's fields and its ``extra`` as one JSON object; the standard library has none), configured
once here: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the fields a line
passes as ``extra`` and, for an error, ``exc_info`` (the traceback as text). The servers' own lines
use it too: ``synthstack serve`` hands uvicorn and gunicorn a logging configuration naming
:class:`JsonLogFormatter` (:func:`server_logging_config`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

__all__ = [
    "ACCESS_LOGGER",
    "LOG_FORMATS",
    "SERVER_LOGGERS",
    "AtDebug",
    "JsonLogFormatter",
    "configure_logging",
    "quiet_info",
    "server_logging_config",
]

LOG_FORMATS = ("text", "json")
#: One line per request, written by the pipeline (:mod:`synthstack_core.observability`).
ACCESS_LOGGER = "synthstack.access"
#: The loggers of the servers ``synthstack serve`` runs, which keep handlers of their own.
SERVER_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn",
    "gunicorn.error",
    "gunicorn.access",
)


class AtDebug(logging.Filter):
    """Re-levels a logger's INFO records (those ``chatter`` picks; default: all) to DEBUG, and lets
    them through only where DEBUG is on."""

    def __init__(self, chatter: Callable[[logging.LogRecord], bool] | None = None) -> None:
        super().__init__()
        self.chatter = chatter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and (self.chatter is None or self.chatter(record)):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def quiet_info(name: str, chatter: Callable[[logging.LogRecord], bool] | None = None) -> None:
    """Send the INFO lines of logger ``name`` that ``chatter`` picks (default: all) to DEBUG, so
    that a library's routine lines do not bury the ones that matter. Idempotent: a logger gets one
    such filter."""
    logger = logging.getLogger(name)
    if not any(isinstance(existing, AtDebug) for existing in logger.filters):
        logger.addFilter(AtDebug(chatter))


class JsonLogFormatter(JsonFormatter):
    """One JSON object per line: ``timestamp``, ``level``, ``logger``, ``message`` and the line's
    ``extra`` fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Arguments a logging configuration may pass (``format``, ``datefmt``) are ignored: the
        # fields are this format's.
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )


def configure_logging(log_format: str) -> None:
    """Apply ``SYNTHSTACK_LOG_FORMAT`` to this process's logging (``text``: left as it is).

    ``json``: every handler of the root logger and of the servers' loggers writes JSON; a root
    logger without a handler (uvicorn configures only its own loggers) gets one on stderr; the access
    log's level is INFO unless it was set. Idempotent.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}")
    if log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for name in ("", *SERVER_LOGGERS):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, JsonLogFormatter):
                handler.setFormatter(JsonLogFormatter())
    access = logging.getLogger(ACCESS_LOGGER)
    if access.level == logging.NOTSET:
        access.setLevel(logging.INFO)


def server_logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document writing every line, the servers' included, as JSON
    to stderr (what ``synthstack serve`` gives uvicorn and gunicorn with ``json``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLogFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level, "propagate": False}
            for name in SERVER_LOGGERS
            if "." not in name
        },
    }
