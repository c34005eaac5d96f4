"""Records and a fake clock for the audit tests."""

from __future__ import annotations

import time
import uuid

from netweave.security.audit import AuditRecord

#: a fixed hour well inside any retention the tests use relative to real time
BASE = time.time() - 3600.0


class FakeClock:
    """An epoch clock that moves only when told to."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_record(
    offset: float,
    *,
    tenant: str | None = None,
    outcome: str = "success",
    action: str = "subscriptions:create",
    status: int = 201,
    principal: str = "smo-user",
) -> AuditRecord:
    """A record ``offset`` seconds after :data:`BASE`."""
    return AuditRecord.new(
        at=BASE + offset,
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        principal=principal,
        auth_methods=["token"],
        tenant_id=tenant,
        action=action,
        method="POST",
        target="/o2ims-infrastructureInventory/v1/subscriptions",
        outcome=outcome,  # type: ignore[arg-type]
        status=status,
        source_address="127.0.0.1",
    )
