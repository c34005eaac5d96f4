"""Bounded polling for the tests: never a fixed sleep longer than needed, never forever."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """The first truthy value of ``check()``; fails once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(interval)
