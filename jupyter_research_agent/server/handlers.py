"""HTTP handlers. Thin: parse, call the engine, serialize.

Every verb carries `@web.authenticated` and `@authorized` (resource "research-agent");
verbs that lead to code running in side kernels also need the server's `kernels: execute`
permission. Errors become JSON in one place, `ResearchAgentHandler.write_error`, through
`errors.reply_for`. tests/test_foundation_auth.py walks every registered route and proves that
a request without credentials gets 403.
"""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from pydantic import BaseModel
from tornado import web

from .. import __version__
from ..core.models import AddProposal, ApproveProposal, CreateExploration, EditProposal
from .errors import reply_for
from .events import REDACTED
from .responses import ExplorationList, ModelStatus, PoolStatus, StatusResponse

if TYPE_CHECKING:
    from ..core.engine import Engine
    from .extension import ResearchAgentExtension
    from .options import ResearchAgent

API_PREFIX = "/api/research-agent"
AUTH_RESOURCE = "research-agent"
MAX_BODY_BYTES = 1024 * 1024

# Settings keys under which the extension app stores its configuration and itself.
CONFIG_SETTINGS_KEY = "research_agent_config"
EXTENSION_SETTINGS_KEY = "research_agent_extension"

_ID = r"(?P<{}>[A-Za-z0-9_-]{{1,64}})"
M = TypeVar("M", bound=BaseModel)


class ResearchAgentHandler(APIHandler):
    """Base for all handlers of this extension."""

    auth_resource = AUTH_RESOURCE

    @property
    def agent_config(self) -> ResearchAgent:
        config: ResearchAgent = self.settings[CONFIG_SETTINGS_KEY]
        return config

    @property
    def extension(self) -> ResearchAgentExtension:
        extension: ResearchAgentExtension = self.settings[EXTENSION_SETTINGS_KEY]
        return extension

    @property
    def engine(self) -> Engine:
        return self.extension.engine

    # ------------------------------------------------------------ input

    def read_body(self, model: type[M]) -> M:
        """The request body validated as `model`; 413 when too large, 400 when invalid."""
        declared = self.request.headers.get("Content-Length", "0")
        too_big = not declared.isdigit() or int(declared) > MAX_BODY_BYTES
        if too_big or len(self.request.body) > MAX_BODY_BYTES:
            raise web.HTTPError(
                413, f"Request body larger than {MAX_BODY_BYTES} bytes.", reason="too_large"
            )
        body = self.request.body or b"{}"
        return model.model_validate_json(body)

    async def require_kernel_execute(self) -> None:
        """Refuse unless the server's authorizer lets this user execute code in kernels."""
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", "kernels")
        )
        if not allowed:
            raise web.HTTPError(
                403,
                "Running code in side kernels needs permission to execute kernels.",
                reason="forbidden",
            )

    # ------------------------------------------------------------ output

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.finish(self.redacted(model.model_dump_json()))

    def redacted(self, text: str) -> str:
        """`text` without the configured API key: a last line of defence for every answer."""
        config = self.settings.get(CONFIG_SETTINGS_KEY)
        key = config.api_key if config is not None else ""
        return text.replace(key, REDACTED) if key else text

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error as JSON `{message, reason}`; never a traceback, never a secret."""
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and exc_info[1] is not None:
            reply = reply_for(exc_info[1])
        else:
            reply = reply_for(web.HTTPError(status_code))
        self.set_status(reply.status)
        self.set_header("Content-Type", "application/json")
        self.finish(self.redacted(json.dumps(reply.body())))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Expected failures (bad input, unknown id, provider down) are one warning line;
        # only bugs get a traceback, and only in the server log.
        if value is None:
            return
        reply = reply_for(value)
        if reply.expected:
            self.log.warning(
                "%s %s -> %d: %s",
                self.request.method,
                self.request.path,
                reply.status,
                self.redacted(reply.message),
            )
        else:
            self.log.error(
                "Uncaught exception %s %s",
                self.request.method,
                self.request.path,
                exc_info=(typ, value, tb) if typ is not None else sys.exc_info(),
            )


class StatusHandler(ResearchAgentHandler):
    """`GET /status`: version, model configured or offline, pool and queue state."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        config = self.agent_config
        engine_status = self.engine.status()
        status = StatusResponse(
            version=__version__,
            model=ModelStatus(
                configured=config.model_configured,
                name=config.model or None,
                base_url_configured=bool(config.base_url),
            ),
            pool=PoolStatus.model_validate(engine_status["pool"]),
            explorations_active=engine_status.get("explorations_active", 0),
        )
        self.write_model(status)


class ExplorationsHandler(ResearchAgentHandler):
    """`GET /explorations?notebook_path=P` lists (newest first); `POST` creates one."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        notebook_path = self.get_query_argument("notebook_path", None) or None
        explorations = self.engine.list_explorations(notebook_path)
        self.write_model(ExplorationList(explorations=explorations))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.read_body(CreateExploration)
        await self.require_kernel_execute()
        exploration = await self.engine.create_exploration(request)
        location = url_path_join(self.base_url, API_PREFIX, "explorations", exploration.id)
        self.set_header("Location", location)
        self.write_model(exploration, status=201)


class ExplorationHandler(ResearchAgentHandler):
    """`GET /explorations/{id}`: one exploration with proposals, runs and comparison."""

    @web.authenticated
    @authorized
    async def get(self, exploration_id: str) -> None:
        self.write_model(self.engine.get_exploration(exploration_id))


class AddProposalHandler(ResearchAgentHandler):
    """`POST /explorations/{id}/proposals`: the researcher's own code for the cell."""

    @web.authenticated
    @authorized
    async def post(self, exploration_id: str) -> None:
        request = self.read_body(AddProposal)
        await self.require_kernel_execute()
        proposal = await self.engine.add_proposal(exploration_id, request)
        self.write_model(proposal, status=201)


class ProposalHandler(ResearchAgentHandler):
    """`PATCH /proposals/{id}`: replace a proposal's code; its approval is cleared."""

    @web.authenticated
    @authorized
    async def patch(self, proposal_id: str) -> None:
        request = self.read_body(EditProposal)
        await self.require_kernel_execute()
        self.write_model(await self.engine.edit_proposal(proposal_id, request))


class ApproveHandler(ResearchAgentHandler):
    """`POST /proposals/{id}/approve {"code_sha256"}`: run exactly this code (409 if stale)."""

    @web.authenticated
    @authorized
    async def post(self, proposal_id: str) -> None:
        request = self.read_body(ApproveProposal)
        await self.require_kernel_execute()
        self.write_model(await self.engine.approve(proposal_id, request.code_sha256))


class RejectHandler(ResearchAgentHandler):
    """`POST /proposals/{id}/reject`."""

    @web.authenticated
    @authorized
    async def post(self, proposal_id: str) -> None:
        self.write_model(await self.engine.reject(proposal_id))


class RunHandler(ResearchAgentHandler):
    """`GET /runs/{id}`: one run with its captured outputs."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.write_model(self.engine.get_run(run_id))


class CancelRunHandler(ResearchAgentHandler):
    """`POST /runs/{id}/cancel`: drop a queued run or stop a running one."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        self.write_model(await self.engine.cancel_run(run_id))


default_handlers: list[tuple[str, type[web.RequestHandler]]] = [
    (rf"{API_PREFIX}/status", StatusHandler),
    (rf"{API_PREFIX}/explorations", ExplorationsHandler),
    (rf"{API_PREFIX}/explorations/{_ID.format('exploration_id')}", ExplorationHandler),
    (
        rf"{API_PREFIX}/explorations/{_ID.format('exploration_id')}/proposals",
        AddProposalHandler,
    ),
    (rf"{API_PREFIX}/proposals/{_ID.format('proposal_id')}", ProposalHandler),
    (rf"{API_PREFIX}/proposals/{_ID.format('proposal_id')}/approve", ApproveHandler),
    (rf"{API_PREFIX}/proposals/{_ID.format('proposal_id')}/reject", RejectHandler),
    (rf"{API_PREFIX}/runs/{_ID.format('run_id')}", RunHandler),
    (rf"{API_PREFIX}/runs/{_ID.format('run_id')}/cancel", CancelRunHandler),
]
