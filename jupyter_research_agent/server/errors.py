"""The one place where exceptions become HTTP answers.

Every error response is JSON ``{"message": str, "reason": str | null}``. Nothing here ever puts
a traceback or an exception's repr into a response: unexpected errors answer 500 with a fixed
message and are logged on the server.

    InvalidInput (NotebookError, CellError), pydantic ValidationError  -> 400
    NotFound                                                           -> 404
    Conflict                                                           -> 409
    ProviderAuthError (bad key, unknown model: fix the configuration)  -> 502
    any other ProviderError (quota, timeout, unusable output)          -> 503
    KernelError (a side kernel could not start)                        -> 503
    EngineStopped (the server is shutting down)                        -> 503
    a body over MAX_BODY_BYTES                                         -> 413 (handlers)
"""

from __future__ import annotations

from dataclasses import dataclass
from http.client import responses

from pydantic import ValidationError
from tornado import web

from ..core import errors

UNEXPECTED_MESSAGE = "Internal error in the research agent; the server log has details."


class EngineStopped(RuntimeError):
    """The extension is stopping or stopped: no engine serves requests any more."""


@dataclass(frozen=True)
class ErrorReply:
    status: int
    message: str
    reason: str | None = None
    expected: bool = True  # False: a bug, log it with its traceback

    def body(self) -> dict[str, str | None]:
        return {"message": self.message, "reason": self.reason}


# Ordered: the first matching class wins, so subclasses come before their bases.
_DOMAIN_STATUS: tuple[tuple[type[errors.ResearchAgentError], int, str], ...] = (
    (errors.InvalidInput, 400, "invalid_input"),
    (errors.NotFound, 404, "not_found"),
    (errors.Conflict, 409, "conflict"),
    (errors.ProviderAuthError, 502, "provider_auth"),
    (errors.ProviderQuotaError, 503, "provider_quota"),
    (errors.ProviderTimeout, 503, "provider_timeout"),
    (errors.ProposalFormatError, 503, "proposal_format"),
    (errors.ProviderError, 503, "provider_unavailable"),
    (errors.KernelError, 503, "kernel_unavailable"),
)


def validation_message(err: ValidationError) -> str:
    """Field-by-field message such as ``cell_id: Field required; seeds: Input should be ...``."""
    parts: list[str] = []
    for item in err.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item.get("loc", ()))
        if item.get("type") == "json_invalid":
            return "Request body is not valid JSON."
        parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    return "Invalid request body: " + "; ".join(parts)


def reply_for(exc: BaseException) -> ErrorReply:
    """Map any exception raised while serving a request to its HTTP answer."""
    if isinstance(exc, web.HTTPError):
        message = exc.log_message or responses.get(exc.status_code, "Error")
        # tornado stores log_message as a %-format string when args are given
        if exc.args:
            message = message % exc.args
        return ErrorReply(exc.status_code, message, exc.reason)
    if isinstance(exc, EngineStopped):
        return ErrorReply(503, str(exc), "stopping")
    if isinstance(exc, ValidationError):
        return ErrorReply(400, validation_message(exc), "invalid_input")
    if isinstance(exc, errors.ResearchAgentError):
        for klass, status, reason in _DOMAIN_STATUS:
            if isinstance(exc, klass):
                return ErrorReply(status, str(exc) or reason.replace("_", " "), reason)
        return ErrorReply(500, str(exc) or UNEXPECTED_MESSAGE, "research_agent_error", False)
    return ErrorReply(500, UNEXPECTED_MESSAGE, None, expected=False)
