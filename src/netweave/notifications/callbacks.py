"""Callback URL checks: absolute http(s), not aimed at the gateway's own network, reachable.

Safety: after DNS resolution, every address of the callback host must be outside the
ranges an attacker could use to make the gateway reach what it should not (server-side
request forgery): loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10,
which holds the cloud metadata services at 169.254.169.254), unspecified (0.0.0.0/8, ::),
multicast, and the metadata addresses outside those ranges (AWS fd00:ec2::254, Alibaba
100.100.100.200).  Private ranges (RFC 1918) are allowed: SMOs live there.  An
allow-list of hosts or CIDRs (``NETWEAVE_CALLBACK_ALLOWLIST``) overrides the refusal,
e.g. ``127.0.0.1`` for tests.

Reachability (``NETWEAVE_CALLBACK_VERIFY``, on by default, as O2-IMS and SOL013 ask):
``GET <callback>`` must answer 204 within the timeout, redirects not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from netweave.errors import InvalidRequestError

__all__ = ["CallbackPolicy"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
        "100.100.100.200/32",
        "fd00:ec2::254/128",
        "::ffff:127.0.0.0/104",
        "::ffff:169.254.0.0/112",
    )
)


@dataclass(frozen=True)
class CallbackPolicy:
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    verify: bool = True
    verify_timeout: float = 5.0

    @classmethod
    def from_allowlist(
        cls, allowlist: Iterable[str], *, verify: bool, verify_timeout: float = 5.0
    ) -> CallbackPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (item.strip() for item in allowlist):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), verify, verify_timeout)

    async def check(self, callback: str, *, http: httpx.AsyncClient) -> None:
        """Raise :class:`InvalidRequestError` saying why ``callback`` is refused."""
        host = _host_of(callback)
        if host not in self.allowed_hosts:
            for address in await _resolve(host):
                if self._refused(address):
                    raise InvalidRequestError(
                        f"callback host {host} resolves to {address}, a loopback, link-local, "
                        "metadata or otherwise internal address; callbacks may not target it"
                    )
        if self.verify:
            await self._verify_reachable(callback, http=http)

    def _refused(self, address: IPAddress) -> bool:
        if any(address in network for network in self.allowed_networks):
            return False
        return any(address in network for network in _REFUSED)

    async def _verify_reachable(self, callback: str, *, http: httpx.AsyncClient) -> None:
        try:
            response = await http.get(callback, timeout=self.verify_timeout, follow_redirects=False)
        except httpx.TimeoutException:
            raise InvalidRequestError(
                f"callback {callback} did not answer GET within {self.verify_timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise InvalidRequestError(
                f"callback {callback} is not reachable: {type(exc).__name__}"
            ) from None
        if response.status_code != 204:
            raise InvalidRequestError(
                f"callback {callback} answered GET with {response.status_code}; "
                "O2-IMS requires 204 No Content"
            )


def _host_of(callback: str) -> str:
    try:
        parts = urlsplit(callback)
        _ = parts.port  # a malformed port raises ValueError
    except ValueError:
        raise InvalidRequestError(f"callback {callback!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"callback {callback!r} must be an absolute http or https URL")
    if parts.username or parts.password:
        raise InvalidRequestError("callback URLs may not carry credentials")
    return parts.hostname.lower().rstrip(".")


async def _resolve(host: str) -> list[IPAddress]:
    with contextlib.suppress(ValueError):  # a literal address needs no resolving
        return [ipaddress.ip_address(host)]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidRequestError(f"callback host {host} does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
