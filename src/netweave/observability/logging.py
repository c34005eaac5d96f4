"""Structured logging with structlog.

Every line is one JSON object (or a readable console line with ``log_format=console``)
carrying the request id of the request that produced it, through structlog's
contextvars, and -- while tracing is on and a span is current -- its ``trace_id`` and
``span_id`` (:mod:`netweave.observability.tracing`), so a line leads to its trace.
netweave's own loggers use structlog's native bound loggers writing bytes rendered by
orjson: the access log writes a line per request, and the standard-library path costs
more than answering a cached read.  Standard-library loggers (uvicorn,
asyncio) are routed through the same processors so the output is uniform.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import Any, BinaryIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from netweave.observability import tracing

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class LineWriter:
    """Writes log lines to one binary stream, batching those written on the event loop.

    A line logged from a running event loop joins a batch that is written with one
    ``write`` and one ``flush`` at the end of the current loop iteration, so a busy
    gateway pays one system call per iteration rather than one per access-log line.
    A line logged outside a loop (start-up, shutdown, other threads) is written at once,
    after any pending batch, so the order of lines is kept.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._scheduled = False
        atexit.register(self.flush)

    def write(self, line: bytes) -> None:
        if self._scheduled:  # a batch of this loop iteration is open: join it
            self._pending.append(line)  # (no loop lookup: it costs a getpid() each time)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append(line)
            self.flush()
            return
        self._pending.append(line)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr must never take a request down


class _WriterLogger:
    """structlog's final logger over a :class:`LineWriter` (every level method writes)."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: bytes) -> None:
        self._writer.write(message + b"\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _json_bytes(event: EventDict, **_: Any) -> bytes:
    return orjson.dumps(event, default=repr)


def _json_text(event: EventDict, **_: Any) -> str:
    return orjson.dumps(event, default=repr).decode()


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the current span's ``trace_id`` and ``span_id``; with tracing off, this is one
    attribute read."""
    if tracing.ENABLED:
        ids = tracing.current_ids()
        if ids is not None:
            event["trace_id"], event["span_id"] = ids
    return event


class _UtcTimestamper:
    """``timestamp``: ISO 8601 UTC with microseconds, as structlog's ``TimeStamper(fmt="iso",
    utc=True)`` writes it, with the date and time of day formatted once per second rather
    than once per line (the access log writes thousands of lines a second)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        _UtcTimestamper(),
        structlog.processors.format_exc_info,
    ]


def configure_logging(*, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the standard library root logger for the process."""
    shared = _shared_processors()
    writer = LineWriter(sys.stderr.buffer)
    renderers: list[Processor]
    stdlib_renderer: Processor
    if fmt == "json":
        renderers = [structlog.processors.JSONRenderer(serializer=_json_bytes)]
        stdlib_renderer = structlog.processors.JSONRenderer(serializer=_json_text)
    else:
        stdlib_renderer = structlog.dev.ConsoleRenderer(colors=False)
        renderers = [stdlib_renderer, _encode]
    structlog.configure(
        processors=[*shared, *renderers],
        logger_factory=lambda *_: _WriterLogger(writer),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _stdlib_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, stdlib_renderer],
    )
    handler = _BinaryStderrHandler(writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    # uvicorn's own access log is replaced by ours (it lacks the request id).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _encode(_: WrappedLogger, __: str, message: Any) -> bytes:
    """Final processor of the console format: the rendered line as bytes for the writer."""
    return str(message).encode("utf-8", "replace")


class _BinaryStderrHandler(logging.Handler):
    """Writes formatted records to the same binary stream as structlog's BytesLogger.

    Mixing writes through ``sys.stderr`` (text) and ``sys.stderr.buffer`` (bytes) lets
    the two buffers interleave inside lines; one stream keeps every line whole.
    """

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.write(self.format(record).encode("utf-8", "replace") + b"\n")
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


def get_unfiltered_logger(name: str, **initial: Any) -> Any:
    """Like :func:`get_logger`, but its info lines are written whatever ``log_level`` says.

    For records that must not be lost to a quiet log level: the audit trail's lines are
    its fallback copy when the store cannot take them.
    """
    return structlog.wrap_logger(
        None,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        component=name,
        **initial,
    )
