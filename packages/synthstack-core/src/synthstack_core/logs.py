"""Log lines as JSON (``SYNTHSTACK_LOG_FORMAT=json``), and the access log (a leaf module).

The formatter is python-json-logger's (a maintained, pure-Python ``logging.Formatter`` that writes a
record's fields and its ``extra`` as one JSON object; the standard library has none), configured
once here: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the fields a line
passes as ``extra`` and, for an error, ``exc_info`` (the traceback as text). The servers' own lines
use it too: ``synthstack serve`` hands uvicorn and gunicorn a logging configuration naming
:class:`JsonLogFormatter` (:func:`server_logging_config`).

With tracing on (:mod:`synthstack_core.tracing`), every record made while a span is current (a
request's, and everything it does) carries ``trace_id`` and ``span_id`` (:func:`add_trace_ids`): JSON
lines have them as fields, text lines end their first line with ``trace_id=… span_id=…``
(:class:`TextWithTraceIds`).
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
    "TextWithTraceIds",
    "add_trace_ids",
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


class TextWithTraceIds(logging.Formatter):
    """A text formatter's lines, the first one ending with `` trace_id=… span_id=…`` for a record
    made inside a span (:func:`add_trace_ids`); other records are formatted as they were."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner if inner is not None else logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:
            return text
        first, newline, rest = text.partition("\n")  # a traceback follows the message line
        return (
            f"{first} trace_id={trace_id} span_id={getattr(record, 'span_id', '')}{newline}{rest}"
        )


class _TraceIdsFactory:
    """A log-record factory adding the current span's ids to the records of another."""

    def __init__(
        self,
        inner: Callable[..., logging.LogRecord],
        current: Callable[[], tuple[str, str] | None],
    ) -> None:
        self.inner = inner
        self.current = current

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        ids = self.current()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return record


def add_trace_ids(current: Callable[[], tuple[str, str] | None]) -> None:
    """Give every log record made while ``current()`` names a span its ``trace_id`` and
    ``span_id`` (a record factory around the process's; once per process)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _TraceIdsFactory):
        logging.setLogRecordFactory(_TraceIdsFactory(factory, current))


def configure_logging(log_format: str, *, trace_ids: bool = False) -> None:
    """Apply ``SYNTHSTACK_LOG_FORMAT`` to this process's logging.

    ``json``: every handler of the root logger and of the servers' loggers writes JSON; a root
    logger without a handler (uvicorn configures only its own loggers) gets one on stderr; the access
    log's level is INFO unless it was set. ``text``: left as it is, except that with ``trace_ids``
    (tracing on) those handlers' lines end with the ids of the span they were written in
    (:class:`TextWithTraceIds`; the servers' access lines are written outside any span). Idempotent.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}")
    if log_format != "json":
        if trace_ids:
            for name in ("", *SERVER_LOGGERS):
                for handler in logging.getLogger(name).handlers:
                    if not isinstance(handler.formatter, TextWithTraceIds | JsonLogFormatter):
                        handler.setFormatter(TextWithTraceIds(handler.formatter))
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
