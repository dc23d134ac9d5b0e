"""The Jupyter Server extension: one engine for the server's lifetime, its API and its events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from jupyter_server.extension.application import ExtensionApp

from .. import __version__
from ..core.config import EngineConfig
from .autopilot_handlers import autopilot_handlers
from .errors import EngineStopped
from .events import SCHEMA_PATH, EventBridge
from .handlers import CONFIG_SETTINGS_KEY, EXTENSION_SETTINGS_KEY, default_handlers
from .live import ServerLiveKernels
from .options import ResearchAgent

if TYPE_CHECKING:
    from jupyter_events import EventLogger
    from jupyter_server.serverapp import ServerApp

    from ..core.engine import Engine

__all__ = ["ResearchAgent", "ResearchAgentExtension"]


class ResearchAgentExtension(ExtensionApp):
    """Serves the research agent's REST API under /api/research-agent/."""

    name = "jupyter_research_agent"
    description = "Research copilot: proposes and runs experiment variations in side kernels."
    classes = [ResearchAgent]  # noqa: RUF012 - traitlets declares it a plain class attribute

    agent_config: ResearchAgent
    engine_config: EngineConfig
    _engine: Engine | None = None
    _unsubscribe: Callable[[], None] | None = None

    def initialize_settings(self) -> None:
        # parent=self.serverapp: `c.ResearchAgent.*` from the server's config files applies.
        self.agent_config = ResearchAgent(parent=self.server)
        self.settings[CONFIG_SETTINGS_KEY] = self.agent_config
        self.settings[EXTENSION_SETTINGS_KEY] = self
        self.event_logger.register_event_schema(SCHEMA_PATH)
        self.start_engine()
        model = self.agent_config.model if self.agent_config.model_configured else None
        self.log.info(
            "jupyter_research_agent %s: model %s, %d side kernels at most, ledger %s",
            __version__,
            model or "none (offline proposer)",
            self.engine_config.pool_size,
            self.engine_config.ledger_path,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend([*default_handlers, *autopilot_handlers])

    @property
    def server(self) -> ServerApp:
        if self.serverapp is None:
            raise RuntimeError("the extension is not linked to a server")
        return self.serverapp

    @property
    def event_logger(self) -> EventLogger:
        event_logger = self.server.event_logger
        if event_logger is None:
            raise RuntimeError("the server has no event logger")
        return event_logger

    def start_engine(self) -> Engine:
        """Build the engine from `c.ResearchAgent.*` and forward its events to the event bus."""
        options = self.agent_config
        config = self.engine_config = options.engine_config(Path(self.server.root_dir))
        engine_class = cast("Callable[..., Engine]", options.engine_class)
        engine = engine_class(config, **options.collaborators(config))
        if hasattr(engine, "use_live_kernels"):
            # Runs may copy variables from the notebook's own kernel when it is idle.
            engine.use_live_kernels(ServerLiveKernels(self.server))
        bridge = EventBridge(self.event_logger, self.log, secrets=[options.api_key])
        self._unsubscribe = engine.subscribe(bridge)
        self._engine = engine
        return engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise EngineStopped("The research agent is shutting down.")
        return self._engine

    async def stop_extension(self) -> None:
        """Cancel runs, shut every side kernel down and close the ledger."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await engine.close()
        self.log.info("jupyter_research_agent: engine stopped, side kernels shut down")
