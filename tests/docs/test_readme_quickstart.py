"""The README's quick start, run verbatim against a real gateway and webhook receiver.

The block between ``<!-- quickstart:begin -->`` and ``<!-- quickstart:end -->`` is a
console session: ``$ `` lines (with ``\\`` continuations) are commands, the lines after
them their output.  Every command runs, in order, in one bash; each output must equal
the README's, except for what differs from run to run (random UUIDs, timestamps) and the
ports, which are the test's own.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.servers import RunningGateway, serve_gateway
from tests.webhooks import Receiver, running_receiver

README = Path(__file__).resolve().parents[2] / "README.md"
_BEGIN, _END = "<!-- quickstart:begin -->", "<!-- quickstart:end -->"
_RANDOM_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@dataclass
class Step:
    command: str
    output: list[str]


def quickstart_steps(text: str) -> list[Step]:
    block = text.split(_BEGIN, 1)[1].split(_END, 1)[0]
    lines = block.split("```console", 1)[1].rsplit("```", 1)[0].strip("\n").splitlines()
    steps: list[Step] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            assert not line.strip() or steps, f"output before any command: {line!r}"
            if line.strip():
                steps[-1].output.append(line)
            index += 1
            continue
        command = [line[2:]]
        while command[-1].endswith("\\"):
            index += 1
            command.append(lines[index])
        steps.append(Step("\n".join(command), []))
        index += 1
    return steps


def normalise(text: str) -> str:
    return _TIME.sub("<time>", _RANDOM_UUID.sub("<uuid>", text)).strip()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with serve_gateway(access_log=False, callback_allowlist="127.0.0.1") as running:
        yield running


def test_the_readme_quick_start_works_verbatim(
    gateway: RunningGateway, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script("/notify")
    steps = quickstart_steps(README.read_text())
    assert len(steps) >= 8
    port, receiver_port = gateway.settings.port, receiver.base_url.rsplit(":", 1)[1]
    script = ["set -o pipefail"]
    for number, step in enumerate(steps):
        command = step.command.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        command = command.replace("127.0.0.1:9999", f"127.0.0.1:{receiver_port}")
        script += [f"echo '@@step {number}'", command]
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    outputs = re.split(r"^@@step \d+\n", done.stdout, flags=re.MULTILINE)[1:]
    assert len(outputs) == len(steps)
    for step, output in zip(steps, outputs, strict=True):
        got = output.replace(f"127.0.0.1:{port}", "127.0.0.1:8080")
        got = got.replace(f"127.0.0.1:{receiver_port}", "127.0.0.1:9999")
        assert normalise(got) == normalise("\n".join(step.output)), step.command
    # the subscription in the quick start was told about the pool's changes
    assert receiver.received("/notify")
