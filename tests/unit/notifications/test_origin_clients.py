from __future__ import annotations

import httpx

from netweave.notifications.clients import OriginClients


async def test_one_client_per_origin_and_bounded() -> None:
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        client = httpx.AsyncClient(trust_env=False)
        made.append(client)
        return client

    clients = OriginClients(factory, max_origins=2)
    a = clients.client_for("http://a.example:8080/x")
    assert clients.client_for("http://A.example:8080/other") is a  # same origin
    b = clients.client_for("https://a.example:8080/x")  # another scheme
    assert b is not a
    clients.client_for("http://c.example/x")  # evicts the least recently used (a)
    assert clients.client_for("http://a.example:8080/x") is not a
    await clients.aclose()
    assert len(made) == 4
    assert all(client.is_closed for client in made)
