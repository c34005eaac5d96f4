"""Builders of tenancy records for the tests."""

from __future__ import annotations

import uuid
from typing import Any

from netweave.security.tenancy import Quotas, RoleBinding, Tenant, User

NOW = "2024-05-01T12:00:00.000Z"


def tenant(tenant_id: str, **fields: Any) -> Tenant:
    fields.setdefault("name", f"Tenant {tenant_id}")
    fields.setdefault("quotas", Quotas())
    return Tenant(tenant_id=tenant_id, created_at=NOW, updated_at=NOW, **fields)


def user(tenant_id: str, subject: str, *, name: str | None = None) -> User:
    return User(
        user_id=str(uuid.uuid4()), tenant_id=tenant_id, subject=subject, name=name, created_at=NOW
    )


def binding(subject: str, role: str, tenant_id: str | None = None) -> RoleBinding:
    return RoleBinding(
        role_binding_id=str(uuid.uuid4()),
        subject=subject,
        role=role,
        tenant_id=tenant_id,
        created_at=NOW,
    )
