"""Engine settings. The server fills them from traitlets, the CLI from its flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


def default_ledger_path() -> Path:
    """``$JUPYTER_DATA_DIR/research_agent/ledger.sqlite`` (per user, survives restarts)."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "research_agent" / "ledger.sqlite"


class LLMConfig(BaseModel):
    """An OpenAI-compatible endpoint. ``api_key`` is a SecretStr so it never prints."""

    model: str = ""
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 120.0
    max_retries: int = 2
    context_token_budget: int = 6000
    max_concurrency: int = 4

    @property
    def configured(self) -> bool:
        return bool(self.model) and (self.api_key is not None or self.base_url is not None)

    @classmethod
    def from_env(cls) -> LLMConfig:
        key = os.environ.get("OPENAI_API_KEY")
        return cls(
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini" if key else ""),
            base_url=os.environ.get("OPENAI_BASE_URL") or None,
            api_key=SecretStr(key) if key else None,
        )


class GatewayConfig(BaseModel):
    """Where side kernels start when they do not start on this machine."""

    url: str | None = None
    auth_token: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # The token is sent as "<auth_header_key>: <auth_scheme> <token>" (no scheme: the token alone).
    auth_scheme: str = "token"
    auth_header_key: str = "Authorization"
    request_timeout_s: float = 60.0
    connect_timeout_s: float = 30.0
    validate_cert: bool = True


StateMode = Literal["auto", "snapshot_prepared", "sliced_replay", "full_replay"]


class EngineConfig(BaseModel):
    root_dir: Path = Field(default_factory=Path.cwd)
    ledger_path: Path = Field(default_factory=default_ledger_path)
    pool_size: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=256)
    warm_kernels: int = Field(default=0, ge=0, le=64)
    run_timeout_s: float = Field(default=600.0, gt=0)
    kernel_start_timeout_s: float = Field(default=60.0, gt=0)
    interrupt_grace_s: float = Field(default=3.0, ge=0)
    output_cap_bytes: int = Field(default=1_000_000, ge=1024)
    max_proposals: int = Field(default=6, ge=0, le=50)
    retry_dead_kernel: bool = True
    # How runs rebuild the state before the varied cell: "auto" copies variables from the live
    # kernel or a prepared one when it can, else replays the cells the cell needs; the others
    # force one strategy (for comparisons and for notebooks the analysis gets wrong).
    state_mode: StateMode = "auto"
    # A side kernel whose run left module state alone is cleared and serves the next run.
    reuse_kernels: bool = True
    secret_env_patterns: list[str] = Field(
        default_factory=lambda: ["*_API_KEY", "*_TOKEN", "*_SECRET", "*_PASSWORD"]
    )
    llm: LLMConfig = Field(default_factory=LLMConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
