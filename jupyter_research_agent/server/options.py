"""`c.ResearchAgent.*`: the server's settings for the engine, turned into an EngineConfig."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast, get_args

from pydantic import SecretStr
from traitlets import Bool, Dict, Enum, Float, Int, Type, Unicode, default
from traitlets.config import Configurable

from ..core.config import EngineConfig, LLMConfig, StateMode, default_ledger_path
from .gateway_settings import side_kernel_gateway

STATE_MODES: tuple[str, ...] = get_args(StateMode)


class ResearchAgent(Configurable):
    """Options set as `c.ResearchAgent.<name>` in jupyter_server_config.py."""

    # ------------------------------------------------------------ language model

    model = Unicode(
        help="Name of the language model used to propose variations (for example 'gpt-4o-mini'). "
        "Empty means no model is configured and the offline proposer is used. "
        "Defaults to the OPENAI_MODEL environment variable, else 'gpt-4o-mini' when "
        "OPENAI_API_KEY is set.",
    ).tag(config=True)

    base_url = Unicode(
        help="Base URL of an OpenAI-compatible API (vLLM, Ollama, llama.cpp, ...). "
        "Empty means the provider's default. Defaults to the OPENAI_BASE_URL environment variable.",
    ).tag(config=True)

    api_key = Unicode(
        help="API key for the language model provider. Never logged and never returned by the "
        "server. Defaults to the OPENAI_API_KEY environment variable.",
    ).tag(config=True)

    request_timeout = Float(
        120.0,
        help="Seconds one request to the language model may take before it is abandoned.",
    ).tag(config=True)

    max_retries = Int(
        2,
        help="How many times a failed model request (rate limit, 5xx, dropped connection) is "
        "retried before the exploration reports the failure.",
    ).tag(config=True)

    context_token_budget = Int(
        6000,
        help="Upper bound on the tokens of notebook context (cells, outputs, errors) sent with "
        "one proposal request. Older and longer parts are summarised to fit.",
    ).tag(config=True)

    model_concurrency = Int(
        4,
        help="How many model requests may be in flight at once across all explorations.",
    ).tag(config=True)

    # ------------------------------------------------------------ side kernels and runs

    pool_size = Int(
        help="How many side kernels may run at once. Further approved runs wait in a queue. "
        "Defaults to the number of CPUs.",
    ).tag(config=True)

    warm_kernels = Int(
        0,
        help="How many idle side kernels to keep started ahead of time, so the next run "
        "starts without waiting for a kernel.",
    ).tag(config=True)

    run_timeout = Float(
        600.0,
        help="Seconds one run (all its cells) may take; then it is stopped and marked timed out.",
    ).tag(config=True)

    kernel_start_timeout = Float(
        60.0,
        help="Seconds a side kernel may take to start before the run fails.",
    ).tag(config=True)

    output_cap_bytes = Int(
        1_000_000,
        help="Most bytes of output kept per run; the rest is dropped and the run marked truncated.",
    ).tag(config=True)

    max_proposals = Int(
        6,
        help="Most proposals one exploration asks for.",
    ).tag(config=True)

    state_mode = Enum(
        STATE_MODES,
        default_value="auto",
        help="How a run rebuilds the variables its cell needs from the cells before it. 'auto': "
        "copy them from the notebook's own idle kernel or from a prepared kernel when it can, "
        "else replay only the earlier cells the cell depends on. 'snapshot_prepared', "
        "'sliced_replay' and 'full_replay' force one way (to compare them, or for a notebook "
        "the dependency analysis gets wrong). Kernels on a gateway always replay.",
    ).tag(config=True)

    reuse_kernels = Bool(
        True,
        help="Clear a side kernel whose run left module state alone and give it the next run, "
        "saving a kernel start. False starts a new kernel for every run.",
    ).tag(config=True)

    ledger_path = Unicode(
        help="SQLite file recording explorations, proposals, runs and outputs. Defaults to "
        "research_agent/ledger.sqlite in the Jupyter data directory.",
    ).tag(config=True)

    # ------------------------------------------------------------ side kernels on a gateway

    side_kernel_gateway_url = Unicode(
        help="URL of a Jupyter Kernel Gateway or Enterprise Gateway (for example "
        "'https://eg.example.org:8888') on which side kernels start; the researcher's own kernel "
        "stays where it is. Empty: side kernels start on this machine, or on the server's "
        "gateway when the server itself runs with --gateway-url.",
    ).tag(config=True)

    side_kernel_gateway_auth_token = Unicode(
        help="Token for the side-kernel gateway, sent as 'Authorization: token <TOKEN>'. "
        "Never logged and never sent to kernels.",
    ).tag(config=True)

    side_kernel_gateway_headers = Dict(
        value_trait=Unicode(),
        help="Extra HTTP headers sent with every request to the side-kernel gateway.",
    ).tag(config=True)

    side_kernel_gateway_request_timeout = Float(
        60.0,
        help="Seconds one request to the side-kernel gateway may take. Kernel starts may take "
        "up to kernel_start_timeout, whichever is longer.",
    ).tag(config=True)

    side_kernel_gateway_connect_timeout = Float(
        30.0,
        help="Seconds to wait for a connection to the side-kernel gateway.",
    ).tag(config=True)

    side_kernel_gateway_validate_cert = Bool(
        True,
        help="Check the side-kernel gateway's TLS certificate.",
    ).tag(config=True)

    # ------------------------------------------------------------ collaborators

    engine_class = Type(
        default_value="jupyter_research_agent.core.engine.Engine",
        klass=object,
        help="The engine class. Constructed as engine_class(config, executor=..., "
        "proposer=...) with an EngineConfig.",
    ).tag(config=True)

    executor_class = Type(
        default_value=None,
        allow_none=True,
        klass=object,
        help="Runs approved variations in side kernels; constructed as executor_class(config). "
        "None uses the engine's own executor.",
    ).tag(config=True)

    proposer_class = Type(
        default_value=None,
        allow_none=True,
        klass=object,
        help="Writes proposals; constructed as proposer_class(config). None lets the engine "
        "choose: the model when one is configured, else the offline proposer.",
    ).tag(config=True)

    @default("model")
    def _default_model(self) -> str:
        fallback = "gpt-4o-mini" if os.environ.get("OPENAI_API_KEY") else ""
        return os.environ.get("OPENAI_MODEL", fallback)

    @default("base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("OPENAI_BASE_URL", "")

    @default("api_key")
    def _default_api_key(self) -> str:
        return os.environ.get("OPENAI_API_KEY", "")

    @default("pool_size")
    def _default_pool_size(self) -> int:
        return os.cpu_count() or 2

    @property
    def model_configured(self) -> bool:
        """True when proposals come from the model: a name and a key or an endpoint."""
        return bool(self.model) and bool(self.api_key or self.base_url)

    def engine_config(self, root_dir: Path) -> EngineConfig:
        """The engine's settings; the API key travels as a SecretStr from here on."""
        llm = LLMConfig(
            model=self.model,
            base_url=self.base_url or None,
            api_key=SecretStr(self.api_key) if self.api_key else None,
            timeout_s=self.request_timeout,
            max_retries=self.max_retries,
            context_token_budget=self.context_token_budget,
            max_concurrency=self.model_concurrency,
        )
        return EngineConfig(
            root_dir=root_dir,
            ledger_path=Path(self.ledger_path) if self.ledger_path else default_ledger_path(),
            pool_size=self.pool_size,
            warm_kernels=self.warm_kernels,
            run_timeout_s=self.run_timeout,
            kernel_start_timeout_s=self.kernel_start_timeout,
            output_cap_bytes=self.output_cap_bytes,
            max_proposals=self.max_proposals,
            state_mode=cast("StateMode", self.state_mode),  # the Enum trait checked it
            reuse_kernels=self.reuse_kernels,
            llm=llm,
            gateway=side_kernel_gateway(self, self.parent),
        )

    def collaborators(self, config: EngineConfig) -> dict[str, Any]:
        """Keyword arguments for engine_class: the configured executor and proposer, if any."""
        found: dict[str, Any] = {}
        made: dict[str, Any] = {
            "executor": self.executor_class,
            "proposer": self.proposer_class,
        }
        for name, factory in made.items():
            if factory is not None:
                found[name] = factory(config)
        return found
