"""Wire models shared by every O2-IMS service: API versions and ProblemDetails."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base of every wire model: camelCase on the wire, snake_case in Python, no extras."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class APIVersion(WireModel):
    version: str = Field(examples=["1.0.0"])
    is_deprecated: bool | None = None
    retirement_date: str | None = None


class APIVersions(WireModel):
    uri_prefix: str = Field(examples=["/o2ims-infrastructureInventory/v1"])
    api_versions: list[APIVersion]


class ProblemDetails(BaseModel):
    """RFC 7807 problem details, as O2-IMS defines them."""

    model_config = ConfigDict(extra="forbid")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    additional_attributes: dict[str, str] | None = Field(default=None, alias="additionalAttributes")
