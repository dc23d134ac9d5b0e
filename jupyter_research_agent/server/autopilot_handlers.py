"""HTTP handlers of the autopilot. Thin: parse, call the engine's autopilots, serialize.

Starting an autopilot is the researcher's consent to run code without a click per run, so it
needs the server's `kernels: execute` permission, like an approval. The budget comes only from
the request body of that call; nothing else can change it.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..core.models import AutopilotSettings
from .handlers import API_PREFIX, ResearchAgentHandler


class AutopilotHandler(ResearchAgentHandler):
    """`GET` the state and lineage tree, `POST {settings}` starts, `DELETE` stops."""

    @web.authenticated
    @authorized
    async def get(self, exploration_id: str) -> None:
        self.write_model(self.engine.autopilots.view(exploration_id))

    @web.authenticated
    @authorized
    async def post(self, exploration_id: str) -> None:
        settings = self.read_body(AutopilotSettings)
        await self.require_kernel_execute()
        view = await self.engine.autopilots.start(exploration_id, settings)
        self.write_model(view, status=201)

    @web.authenticated
    @authorized
    async def delete(self, exploration_id: str) -> None:
        self.write_model(await self.engine.autopilots.stop(exploration_id))


class StopAutopilotHandler(ResearchAgentHandler):
    """`POST .../autopilot/stop`: the same as `DELETE .../autopilot`."""

    @web.authenticated
    @authorized
    async def post(self, exploration_id: str) -> None:
        self.write_model(await self.engine.autopilots.stop(exploration_id))


class AutopilotListHandler(ResearchAgentHandler):
    """`GET /autopilot`: the active autopilots across notebooks."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_model(self.engine.autopilots.active())


_EXP = r"(?P<exploration_id>[A-Za-z0-9_-]{1,64})"

autopilot_handlers: list[tuple[str, type[web.RequestHandler]]] = [
    (rf"{API_PREFIX}/autopilot", AutopilotListHandler),
    (rf"{API_PREFIX}/explorations/{_EXP}/autopilot", AutopilotHandler),
    (rf"{API_PREFIX}/explorations/{_EXP}/autopilot/stop", StopAutopilotHandler),
]
