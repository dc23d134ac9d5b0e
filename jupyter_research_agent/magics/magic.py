"""The `%research` / `%%research` magic: parse the line into a typed model, call the session.

Every failure the researcher can cause or meet (bad arguments, no server, an API error, an
interrupt while waiting) ends in one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

from . import args
from .cells import CellRefError
from .client import ApiError, ClientError, ServerUnreachable, WaitTimeout
from .commands import ResearchSession, default_session
from .locate import NotFoundError

# Set by the engine in side kernels: a notebook replayed there must not start explorations.
SIDE_RUN_ENV = "RESEARCH_AGENT_SIDE_RUN"


def fail(message: str) -> None:
    print(f"research-agent: {' '.join(message.split())}", file=sys.stderr)


@magics_class
class ResearchMagics(Magics):
    def __init__(self, shell: Any, session: ResearchSession | None = None) -> None:
        super().__init__(shell)  # type: ignore[no-untyped-call,unused-ignore]
        self._session = session

    @property
    def session(self) -> ResearchSession:
        if self._session is None:
            self._session = default_session(self.shell)
        return self._session

    @line_cell_magic  # type: ignore[untyped-decorator,unused-ignore]
    def research(self, line: str, cell: str | None = None) -> Any:
        """Propose, approve and compare experiment variations. `%research -h` for help."""
        return run_magic(self, line, cell)


def run_magic(magics: ResearchMagics, line: str, cell: str | None) -> Any:
    try:
        command = args.parse(line, cell)
    except args.HelpRequested as help_text:
        print(str(help_text).rstrip())
        return None
    except args.UsageError as err:
        fail(str(err))
        return None
    if os.environ.get(SIDE_RUN_ENV):
        fail("magics do nothing in a side run")
        return None
    session = magics.session
    try:
        return session.execute(command, line)
    except KeyboardInterrupt:
        fail(f"interrupted: stopped waiting; the server carries on ({_follow_up(session)})")
    except NotFoundError as err:
        fail(f"no Jupyter server found for this kernel ({err})")
    except ServerUnreachable as err:
        session.forget_server()
        fail(f"no Jupyter server reachable for this kernel ({err})")
    except WaitTimeout as err:
        fail(f"{err}; the server carries on ({_follow_up(session)})")
    except ApiError as err:
        fail(f"the server said: {err}")
    except (ClientError, CellRefError) as err:
        fail(str(err))
    return None


def _follow_up(session: ResearchSession) -> str:
    if session.current_id:
        return f"`%research status {session.current_id}`"
    return "`%research list`"
