"""The log writer's batching and the timestamp processor."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re

from netweave.observability.logging import LineWriter, _UtcTimestamper


def test_timestamps_are_iso_utc_microseconds_and_current() -> None:
    stamp = _UtcTimestamper()
    before = dt.datetime.now(dt.UTC)
    first = stamp(None, "info", {})["timestamp"]
    second = stamp(None, "info", {})["timestamp"]
    after = dt.datetime.now(dt.UTC)
    for text in (first, second):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert before - dt.timedelta(milliseconds=1) <= when <= after
    assert first <= second


async def test_lines_of_one_loop_iteration_are_written_together_in_order() -> None:
    stream = io.BytesIO()
    writer = LineWriter(stream)
    for number in range(5):
        writer.write(f"line {number}\n".encode())
    assert stream.getvalue() == b""  # batched until the end of this iteration
    await asyncio.sleep(0)
    assert stream.getvalue() == b"".join(f"line {n}\n".encode() for n in range(5))


def test_lines_outside_a_loop_are_written_at_once() -> None:
    stream = io.BytesIO()
    LineWriter(stream).write(b"started\n")
    assert stream.getvalue() == b"started\n"
