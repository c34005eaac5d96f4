"""The container image's recipe: its invariants, and its health check run for real.

No container engine runs here, so the image itself is not built by the tests (see
docs/deployment.md); what can be checked without one is: a pinned multi-stage build that
installs the wheel with the pinned dependencies, a numeric non-root user, no URL fetched
by ADD, no secret baked in, a build context limited to what the build copies, and the
HEALTHCHECK command, which is run here against a real gateway over HTTP and HTTPS.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import trustme
from tests.servers import RunningGateway, free_port, serve_gateway

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PINNED_PYTHON = re.compile(r"python:3\.11\.\d+-slim-bookworm")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    parsed: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        parsed.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return parsed


def stages() -> list[list[Instruction]]:
    """The instructions of each build stage, FROM first."""
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"{instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def test_multi_stage_build_on_a_pinned_base_image() -> None:
    build, final = stages()
    for stage in (build, final):
        image = stage[0].arguments.split()[0]
        assert PINNED_PYTHON.fullmatch(image), f"FROM {image} is not an exact python 3.11 tag"
    assert re.search(r"\bAS build\b", build[0].arguments, re.IGNORECASE)
    build_steps = " ".join(i.arguments for i in build if i.keyword == "RUN")
    assert "pip wheel" in build_steps, "the first stage builds the wheels"
    assert "--constraint requirements/constraints.txt" in build_steps
    install = " ".join(i.arguments for i in final if i.keyword == "RUN")
    assert "--no-index" in install and "--constraint /tmp/constraints.txt" in install
    assert "from=build" in install, "the final stage installs the wheels of the build stage"


def test_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    user = only(final, "USER").arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user} is not a numeric non-root uid"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # USER comes after every RUN: nothing runs as root after it is set
    keywords = [i.keyword for i in final]
    assert "RUN" not in keywords[keywords.index("USER") :]


def test_entrypoint_port_and_health_check() -> None:
    final = stages()[-1]
    assert json.loads(only(final, "ENTRYPOINT").arguments) == ["netweave"]
    assert json.loads(only(final, "CMD").arguments) == ["serve"]
    assert only(final, "EXPOSE").arguments == "8080"
    assert "/healthz" in only(final, "HEALTHCHECK").arguments


def test_nothing_fetched_by_add_and_no_secret_baked_in() -> None:
    for instruction in instructions():
        if instruction.keyword == "ADD":
            assert "://" not in instruction.arguments, f"ADD of a URL: {instruction.arguments}"
        if instruction.keyword in ("ENV", "ARG"):
            for word in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", instruction.arguments):
                assert not re.search(r"SECRET|PASSWORD|TOKEN|KEY|REDIS_URL", word.upper()), (
                    f"{instruction.keyword} {word}: secrets come at run time"
                )


def test_build_context_holds_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore starts by excluding everything"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for instruction in instructions()
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments
        for source in instruction.arguments.split()[:-1]
    }
    assert copied == allowed, f"COPY sources {copied} differ from the allow-list {allowed}"


def health_check(port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, run with this Python for the image's."""
    command = json.loads(only(stages()[-1], "HEALTHCHECK").arguments.split("CMD", 1)[1])
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        env={"NETWEAVE_PORT": str(port), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_health_check_passes_on_a_serving_gateway(gateway: RunningGateway) -> None:
    done = health_check(gateway.settings.port, {})
    assert done.returncode == 0, done.stderr


def test_health_check_fails_when_nothing_listens() -> None:
    done = health_check(free_port(), {})
    assert done.returncode != 0
    assert "Connection refused" in done.stderr


def test_health_check_speaks_https_when_tls_is_configured(tmp_path: Path) -> None:
    # the certificate names the Service, not 127.0.0.1, as in a cluster
    certificate = trustme.CA().issue_cert("netweave.netweave.svc")
    chain, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    certificate.cert_chain_pems[0].write_to_path(chain)
    certificate.private_key_pem.write_to_path(key)
    with serve_gateway(tls_cert_file=chain, tls_key_file=key) as running:
        done = health_check(running.settings.port, {"NETWEAVE_TLS_CERT_FILE": str(chain)})
        assert done.returncode == 0, done.stderr
        plain = health_check(running.settings.port, {})
        assert plain.returncode != 0, "plain HTTP against the HTTPS port must fail"
