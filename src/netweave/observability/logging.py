"""Structured logging with structlog.

Every line is one JSON object (or a readable console line with ``log_format=console``)
carrying the request id of the request that produced it, through structlog's
contextvars.  netweave's own loggers use structlog's native bound loggers writing bytes
rendered by orjson: the access log writes a line per request, and the standard-library
path costs more than answering a cached read.  Standard-library loggers (uvicorn,
asyncio) are routed through the same processors so the output is uniform.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _json_bytes(event: EventDict, **_: Any) -> bytes:
    return orjson.dumps(event, default=repr)


def _json_text(event: EventDict, **_: Any) -> str:
    return orjson.dumps(event, default=repr).decode()


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]


def configure_logging(*, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the standard library root logger for the process."""
    shared = _shared_processors()
    if fmt == "json":
        renderer: Processor = structlog.processors.JSONRenderer(serializer=_json_bytes)
        stdlib_renderer: Processor = structlog.processors.JSONRenderer(serializer=_json_text)
        factory: Any = structlog.BytesLoggerFactory(sys.stderr.buffer)
    else:
        renderer = stdlib_renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=factory,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _stdlib_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, stdlib_renderer],
    )
    handler = _BinaryStderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    # uvicorn's own access log is replaced by ours (it lacks the request id).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class _BinaryStderrHandler(logging.Handler):
    """Writes formatted records to the same binary stream as structlog's BytesLogger.

    Mixing writes through ``sys.stderr`` (text) and ``sys.stderr.buffer`` (bytes) lets
    the two buffers interleave inside lines; one stream keeps every line whole.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "replace") + b"\n"
            sys.stderr.buffer.write(line)
            sys.stderr.buffer.flush()
        except Exception:
            self.handleError(record)


def _stdlib_logger_name(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    if record is not None:
        event["component"] = record.name
    return event


def get_logger(name: str, **initial: Any) -> Any:
    """A structlog logger whose lines carry ``component=<name>``.

    It is a lazy proxy: it may be created at import time, before
    :func:`configure_logging`, and picks the configuration up on first use.
    """
    return structlog.get_logger(component=name, **initial)
