"""Helpers of the rate limiter tests: a fake clock, a counting client, a log recorder."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingRedis(Redis):
    """A client counting the script calls (round trips) made through it."""

    script_calls = 0

    async def evalsha(self, *args: Any, **kwargs: Any) -> Any:
        self.script_calls += 1
        return await super().evalsha(*args, **kwargs)


class Recorder:
    """Stands in for the module's structlog logger: keeps (level, event) pairs."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, event: str, **_: object) -> None:
        self.lines.append(("warning", event))

    def info(self, event: str, **_: object) -> None:
        self.lines.append(("info", event))

    def at(self, level: str) -> list[str]:
        return [event for lvl, event in self.lines if lvl == level]
