"""The wire shapes of O2-IMS inventory objects, written down from ../shared/spec.

Each entry lists every attribute an object may carry with its JSON type, and which
of them are required (R7 required set; R11's additions where they do not conflict).
The API tests hold every response to these, so drift from the spec fails CI.
"""

from __future__ import annotations

import uuid
from typing import Any

STR, INT, BOOL, OBJ, LIST = str, int, bool, dict, list
UUID = "uuid"  # a string holding a UUID

SHAPES: dict[str, dict[str, tuple[Any, bool]]] = {
    # attribute: (type, required)
    "OCloudInfo": {
        "oCloudId": (UUID, True),
        "globalCloudId": (UUID, True),
        "globalcloudId": (UUID, True),
        "name": (STR, True),
        "description": (STR, True),
        "serviceUri": (STR, True),
        "extensions": (OBJ, True),
    },
    "ResourceType": {
        "resourceTypeId": (UUID, True),
        "name": (STR, True),
        "description": (STR, True),
        "vendor": (STR, True),
        "model": (STR, True),
        "version": (STR, True),
        "resourceKind": (STR, True),
        "resourceClass": (STR, True),
        "alarmDictionaryId": (UUID, False),
        "extensions": (OBJ, True),
    },
    "ResourcePool": {
        "resourcePoolId": (UUID, True),
        "name": (STR, True),
        "description": (STR, True),
        "oCloudId": (UUID, True),
        "globalLocationId": (STR, True),
        "location": (STR, False),
        "oCloudSiteId": (UUID, False),
        "extensions": (OBJ, False),
    },
    "Resource": {
        "resourceId": (UUID, True),
        "resourcePoolId": (UUID, True),
        "resourceTypeId": (UUID, True),
        "globalAssetId": (STR, True),
        "description": (STR, True),
        "elements": (LIST, True),
        "tags": (LIST, True),
        "groups": (LIST, True),
        "extensions": (OBJ, True),
    },
    "DeploymentManager": {
        "deploymentManagerId": (UUID, True),
        "name": (STR, True),
        "description": (STR, True),
        "oCloudId": (UUID, True),
        "serviceUri": (STR, True),
        "supportedLocations": (LIST, True),
        "capabilities": (OBJ, True),
        "capacity": (OBJ, True),
        "extensions": (OBJ, False),
    },
    "LocationInfo": {
        "globalLocationId": (STR, True),
        "name": (STR, True),
        "description": (STR, True),
        "oCloudSiteIds": (LIST, True),
        "coordinate": (OBJ, False),
        "civicAddress": (LIST, False),
        "address": (STR, False),
        "extensions": (OBJ, True),
    },
    "OCloudSiteInfo": {
        "oCloudSiteId": (UUID, True),
        "globalLocationId": (STR, True),
        "name": (STR, True),
        "description": (STR, True),
        "resourcePools": (LIST, True),
        "extensions": (OBJ, True),
    },
    "APIVersions": {
        "uriPrefix": (STR, True),
        "apiVersions": (LIST, True),
    },
    "ProblemDetails": {
        "type": (STR, False),
        "title": (STR, False),
        "status": (INT, True),
        "detail": (STR, True),
        "instance": (STR, False),
        "additionalAttributes": (OBJ, False),
    },
}

ENUMS = {
    ("ResourceType", "resourceKind"): {"UNDEFINED", "PHYSICAL", "LOGICAL"},
    ("ResourceType", "resourceClass"): {"UNDEFINED", "COMPUTE", "NETWORKING", "STORAGE"},
}


def assert_shape(name: str, obj: Any) -> None:
    """``obj`` is a spec-faithful ``name``: no unknown attribute, all required ones, right types."""
    shape = SHAPES[name]
    assert isinstance(obj, dict), f"{name} must be a JSON object, got {type(obj).__name__}"
    unknown = set(obj) - set(shape)
    assert not unknown, f"{name} has attributes the spec does not define: {sorted(unknown)}"
    for attribute, (kind, required) in shape.items():
        if attribute not in obj:
            assert not required, f"{name} lacks required attribute {attribute}"
            continue
        value = obj[attribute]
        if kind == UUID:
            assert isinstance(value, str), f"{name}.{attribute} must be a string"
            uuid.UUID(value)
        elif kind is INT:
            assert isinstance(value, int) and not isinstance(value, bool), f"{name}.{attribute}"
        else:
            assert isinstance(value, kind), f"{name}.{attribute} must be {kind.__name__}"
        allowed = ENUMS.get((name, attribute))
        if allowed is not None:
            assert value in allowed, f"{name}.{attribute}={value!r} is not in {sorted(allowed)}"
