"""Throughput of the cached pool list with every security layer on, against security off.

Starts two gateways (``python -m netweave serve``) on loopback:

* **open**: the defaults (plain HTTP, no authentication);
* **secured**: HTTPS with client certificates required (mTLS), a bearer JWT required as
  well (``NETWEAVE_AUTH_MODE=both``), RBAC, tenancy (the caller is a tenant admin whose
  tenant owns every pool, so both gateways answer the same bytes) and the tenant's token
  bucket (set high enough never to refuse, so its cost is measured, not its refusals).

Both are driven by ``curl --parallel`` over kept-alive connections (so TLS handshakes are
amortised, as an SMO's connection pool would), in alternating rounds; the medians and the
secured/open ratio are reported.  ``wrk`` cannot present a client certificate, and
ApacheBench speaks HTTP/1.0, to which uvicorn never keeps a connection alive, so every
request of it would pay a full mTLS handshake.

    python bench/secured.py [--rounds 5] [--requests 50000] [--connections 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import WORK, Sample, free_port

POOLS = "/o2ims-infrastructureInventory/v1/resourcePools"
ISSUER, AUDIENCE = "https://idp.bench.invalid/realms/o2", "netweave"
POOL_NAMES = (
    "mad-ran-edge",
    "mad-core",
    "dal-control-plane",
    "dal-ran-edge",
    "dal-storage",
    "tyo-ran-edge",
    "tyo-core",
)
TARGET_RATIO = 0.70

_ANSWER = re.compile(r"\d{3} [\d.]+")


def curl_load(url: str, *, requests: int, connections: int, extra: tuple[str, ...]) -> Sample:
    """``requests`` GETs of ``url`` over ``connections`` kept-alive connections (curl -Z)."""
    started = time.perf_counter()
    out = subprocess.run(
        [
            "curl",
            "--silent",
            "--no-progress-meter",
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            str(connections),
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code} %{time_total}\\n",
            *extra,
            f"{url}#[1-{requests}]",  # the fragment numbers the requests; it is never sent
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    elapsed = time.perf_counter() - started
    answers = [line.split() for line in out.splitlines() if _ANSWER.fullmatch(line)]
    bad = [code for code, _ in answers if code != "200"]
    if len(answers) != requests or bad:
        raise SystemExit(f"curl saw {len(bad)} errors and {len(answers)}/{requests} answers")
    latencies = sorted(float(seconds) * 1000 for _, seconds in answers)
    return Sample(
        requests / elapsed,
        latencies[len(latencies) // 2],
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    )


@dataclass
class Client:
    """How a client reaches one gateway: its URL, TLS context and headers (and curl's options)."""

    url: str
    context: ssl.SSLContext | None = None
    headers: dict[str, str] | None = None
    curl_options: tuple[str, ...] = ()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.url + path,
            verify=self.context if self.context is not None else True,
            headers=self.headers,
            trust_env=False,
        )


def secured_setup(work: Path, port: int) -> tuple[dict[str, str], Client]:
    """The secured gateway's settings, and its client (a tenant admin of ``smo-a``)."""
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(work / "server.crt"))
    server.private_key_pem.write_to_path(str(work / "server.key"))
    client_ca.cert_pem.write_to_path(str(work / "client-ca.crt"))
    server_ca.cert_pem.write_to_path(str(work / "server-ca.crt"))
    client_cert = client_ca.issue_cert("smo-a-client.bench.invalid")
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(work / "client.pem"))

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (work / "idp.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "smo-a-client", "iat": now, "exp": now + 7200},
        key,
        algorithm="RS256",
        headers={"kid": "bench"},
    )
    tenancy = {
        "tenants": [
            {
                "tenantId": "smo-a",
                "name": "SMO A",
                "quotas": {"requestsPerSecond": 1e9, "burst": 1_000_000_000},
            }
        ],
        "users": [{"tenantId": "smo-a", "subject": "smo-a-client"}],
        "roleBindings": [{"subject": "smo-a-client", "role": "tenant-admin", "tenantId": "smo-a"}],
    }
    (work / "tenancy.yaml").write_text(yaml.safe_dump(tenancy))
    settings = {
        "NETWEAVE_TLS_CERT_FILE": str(work / "server.crt"),
        "NETWEAVE_TLS_KEY_FILE": str(work / "server.key"),
        "NETWEAVE_TLS_CLIENT_CA_FILE": str(work / "client-ca.crt"),
        "NETWEAVE_TLS_CLIENT_CERT_MODE": "required",
        "NETWEAVE_TOKEN_ISSUER": ISSUER,
        "NETWEAVE_TOKEN_AUDIENCE": AUDIENCE,
        "NETWEAVE_TOKEN_KEY_FILES": str(work / "idp.pem"),
        "NETWEAVE_AUTH_MODE": "both",
        "NETWEAVE_TENANCY_FILE": str(work / "tenancy.yaml"),
        "NETWEAVE_SIMULATED_POOL_OWNERS": json.dumps(dict.fromkeys(POOL_NAMES, "smo-a")),
    }
    context = ssl.create_default_context(cafile=str(work / "server.crt"))
    context.check_hostname = False
    server_ca.configure_trust(context)
    context.load_cert_chain(str(work / "client.pem"))
    authorization = f"Bearer {token}"
    client = Client(
        url=f"https://127.0.0.1:{port}",
        context=context,
        headers={"Authorization": authorization},
        curl_options=(
            "--cacert",
            str(work / "server-ca.crt"),
            "--cert",
            str(work / "client.pem"),
            "--header",
            f"Authorization: {authorization}",
        ),
    )
    return settings, client


@contextlib.contextmanager
def gateway(env: dict[str, str], log: Path, client: Client) -> Iterator[None]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "netweave", "serve"], env=env, stdout=sink, stderr=sink
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"the gateway exited early; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the gateway did not become ready; see {log}")
                time.sleep(0.1)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per target")
    parser.add_argument("--requests", type=int, default=50_000, help="requests per run")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed: run `make bench` (it installs it) first")
    work = WORK / "secured"
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env["NETWEAVE_ACCESS_LOG"] = "true"
    open_port, secured_port = free_port(), free_port()
    secured_settings, secured = secured_setup(work, secured_port)
    plain = Client(url=f"http://127.0.0.1:{open_port}")
    targets = {"open": plain, "secured": secured}
    runs: dict[str, list[Sample]] = {name: [] for name in targets}
    with (
        gateway({**env, "NETWEAVE_PORT": str(open_port)}, work / "open.log", plain),
        gateway(
            {**env, **secured_settings, "NETWEAVE_PORT": str(secured_port)},
            work / "secured.log",
            secured,
        ),
    ):
        answers = {name: client.get(POOLS) for name, client in targets.items()}
        ids = {
            name: sorted(p["resourcePoolId"] for p in answer.raise_for_status().json())
            for name, answer in answers.items()
        }
        if ids["open"] != ids["secured"] or not ids["open"]:
            raise SystemExit("the secured gateway does not answer the same pools as the open one")
        print(f"pool list: {len(answers['open'].content)} bytes, {len(ids['open'])} pools")
        for client in targets.values():  # warm-up
            curl_load(
                client.url + POOLS,
                requests=max(1, args.requests // 10),
                connections=args.connections,
                extra=client.curl_options,
            )
        for round_no in range(1, args.rounds + 1):
            for name, client in targets.items():
                runs[name].append(
                    curl_load(
                        client.url + POOLS,
                        requests=args.requests,
                        connections=args.connections,
                        extra=client.curl_options,
                    )
                )
            print(
                f"  round {round_no}: open {runs['open'][-1].rps:,.0f} req/s, "
                f"secured {runs['secured'][-1].rps:,.0f} req/s",
                flush=True,
            )
    medians = {name: statistics.median(s.rps for s in samples) for name, samples in runs.items()}
    ratio = medians["secured"] / medians["open"]
    labels = {
        "open": "open (plain HTTP, no authentication)",
        "secured": "secured (mTLS + JWT + RBAC + tenancy + rate limit)",
    }
    print()
    print(
        f"curl --parallel-max {args.connections}, {args.requests:,} requests per run, "
        f"median of {args.rounds} alternating rounds"
    )
    print("| pool list | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for name, samples in runs.items():
        print(
            f"| {labels[name]} | {medians[name]:,.0f} | "
            f"{statistics.median(s.p50_ms for s in samples):.0f} | "
            f"{statistics.median(s.p99_ms for s in samples):.0f} |"
        )
    met = ratio >= TARGET_RATIO
    print(f"secured / open: {ratio:.0%}")
    print(f"target secured >= {TARGET_RATIO:.0%} of open: {'met' if met else 'NOT met'}")
    (WORK / "secured-results.json").write_text(
        json.dumps(
            {
                "rounds": {name: [s.__dict__ for s in samples] for name, samples in runs.items()},
                "ratio": ratio,
                "target_met": met,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
