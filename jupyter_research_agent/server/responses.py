"""Response bodies that are not domain models; docs/openapi.yaml is generated from them too."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..core.models import Exploration


class ModelStatus(BaseModel):
    configured: bool = Field(description="True when proposals come from a language model.")
    name: str | None = Field(description="The model's name; null when none is configured.")
    base_url_configured: bool = Field(description="True when a custom endpoint is set.")


class PoolStatus(BaseModel):
    pool_size: int = Field(description="Most side kernels running at once.")
    busy: int = Field(description="Side kernels running a variation now.")
    queued: int = Field(description="Approved runs waiting for a side kernel.")
    warm: int = Field(description="Idle side kernels started ahead of time.")


class StatusResponse(BaseModel):
    version: str
    model: ModelStatus
    pool: PoolStatus
    explorations_active: int = Field(description="Explorations proposing or running.")


class ExplorationList(BaseModel):
    explorations: list[Exploration] = Field(description="Newest first.")


class ErrorResponse(BaseModel):
    message: str = Field(description="What went wrong, fit for the researcher.")
    reason: str | None = Field(
        default=None, description="A short machine-readable cause such as `not_found`."
    )
