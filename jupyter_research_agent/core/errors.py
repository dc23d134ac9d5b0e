"""Exceptions raised by the engine.

ResearchAgentError
├── InvalidInput          bad request from the caller            -> HTTP 400, CLI exit 2
│   ├── NotebookError     unreadable notebook, bad path          -> 400
│   └── CellError         unknown cell id, non-code target cell  -> 400
├── NotFound              unknown exploration/proposal/run id    -> 404
├── Conflict              stale hash, wrong state                -> 409
├── ProviderError         the language model failed              -> 503 / 502
│   ├── ProviderAuthError     401/403/unknown model: fix config
│   ├── ProviderQuotaError    quota exhausted
│   ├── ProviderTimeout       our own deadline passed
│   └── ProposalFormatError   invalid output after repairs
└── KernelError           a side kernel failed to start or died
"""

from __future__ import annotations


class ResearchAgentError(Exception):
    """Base class; ``str(err)`` is a message fit for the researcher."""


class InvalidInput(ResearchAgentError):
    pass


class NotebookError(InvalidInput):
    pass


class CellError(InvalidInput):
    pass


class NotFound(ResearchAgentError):
    pass


class Conflict(ResearchAgentError):
    pass


class ProviderError(ResearchAgentError):
    pass


class ProviderAuthError(ProviderError):
    pass


class ProviderQuotaError(ProviderError):
    pass


class ProviderTimeout(ProviderError):
    pass


class ProposalFormatError(ProviderError):
    pass


class KernelError(ResearchAgentError):
    pass
